package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options configures a cluster. The zero value starts a primary and one
// replica with fsync off.
type Options struct {
	// Replicas is the number of hot standbys. 0 means 1; a negative value
	// means none.
	Replicas int
	// Fsync keeps fsync (and full_page_writes) on. Off by default: tests
	// need speed, not durability across power loss.
	Fsync bool
	// Settings are extra postgresql.conf settings for every server.
	Settings map[string]string
	// BinDir overrides FindBinDir.
	BinDir string
	// Logf receives progress lines (e.g. t.Logf). Nil discards them.
	Logf func(format string, args ...any)
	// KeepSignals leaves SIGINT/SIGTERM to the caller, which then must Stop
	// the cluster itself. By default an interrupt stops every running
	// cluster and exits, so a ^C'd test leaves nothing behind.
	KeepSignals bool
}

// Cluster is a running primary and its replicas.
type Cluster struct {
	Primary  *Server
	Replicas []*Server

	dir  string
	bin  string
	user *osUser
	logf func(format string, args ...any)
}

// baseSettings make a small, fast server fit for streaming replication on
// loopback. hot_standby_feedback keeps long replica reads from being
// cancelled by vacuum on the primary, which would make tests flaky.
var baseSettings = map[string]string{
	"listen_addresses":             "'127.0.0.1'",
	"wal_level":                    "replica",
	"hot_standby":                  "on",
	"hot_standby_feedback":         "on",
	"max_wal_senders":              "10",
	"max_replication_slots":        "10",
	"wal_keep_size":                "'256MB'",
	"max_connections":              "200",
	"shared_buffers":               "'32MB'",
	"wal_receiver_status_interval": "'1s'",
	"log_min_messages":             "warning",
	"log_line_prefix":              "'%m [%p] '",
	"track_activities":             "on",
	"dynamic_shared_memory_type":   "mmap", // files in the data dir: a killed server leaks no /dev/shm segment
	"max_prepared_transactions":    "10",
}

// Start creates and starts a cluster. On error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	bin := opts.BinDir
	if bin == "" {
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if err := checkBinDir(bin); err != nil {
		return nil, err
	}
	u, err := serverUser()
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp(baseDir(), dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, user: u, logf: opts.Logf}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	register(c, !opts.KeepSignals)
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	if err := u.chown(dir); err != nil {
		return nil, err
	}

	started := time.Now()
	primary := &Server{Name: "primary", cluster: c, dataDir: filepath.Join(dir, "primary")}
	if err := c.run(ctx, "initdb", "-D", primary.dataDir, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync", "--wal-segsize=1"); err != nil {
		return nil, err
	}
	settings := maps.Clone(baseSettings)
	if !opts.Fsync {
		settings["fsync"] = "off"
		settings["full_page_writes"] = "off"
	}
	maps.Copy(settings, opts.Settings)
	if err := appendConf(filepath.Join(primary.dataDir, "postgresql.conf"), settings); err != nil {
		return nil, err
	}
	c.Primary = primary
	if err := primary.start(ctx, 0); err != nil {
		return nil, err
	}

	n := opts.Replicas
	if n == 0 {
		n = 1
	}
	for i := 1; i <= n; i++ {
		r := &Server{Name: fmt.Sprintf("replica%d", i), cluster: c, dataDir: filepath.Join(dir, fmt.Sprintf("replica%d", i))}
		if err := c.run(ctx, "pg_basebackup", "-h", "127.0.0.1", "-p", fmt.Sprint(primary.port), "-U", "postgres",
			"-D", r.dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
			return nil, err
		}
		// Name the walreceiver so pg_stat_replication says which replica is which.
		if err := appendConf(filepath.Join(r.dataDir, "postgresql.auto.conf"), map[string]string{
			"cluster_name": fmt.Sprintf("'%s'", r.Name),
		}); err != nil {
			return nil, err
		}
		c.Replicas = append(c.Replicas, r)
		if err := r.start(ctx, 0); err != nil {
			return nil, err
		}
	}
	for _, r := range c.Replicas {
		if err := r.WaitStreaming(ctx); err != nil {
			return nil, err
		}
	}
	c.logf("pgcluster: primary :%d and %d replica(s) ready in %v (dir %s)",
		primary.port, len(c.Replicas), time.Since(started).Round(time.Millisecond), dir)
	return c, nil
}

// Dir is the cluster's temporary directory (data directories and logs).
func (c *Cluster) Dir() string { return c.dir }

// Servers returns the primary followed by the replicas.
func (c *Cluster) Servers() []*Server {
	all := []*Server{}
	if c.Primary != nil {
		all = append(all, c.Primary)
	}
	return append(all, c.Replicas...)
}

// Stop shuts every server down and removes the directory. It is safe to call
// more than once.
func (c *Cluster) Stop() error {
	var errs []error
	for _, s := range slices.Backward(c.Servers()) {
		errs = append(errs, s.Stop())
	}
	unregister(c)
	if c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}

// Sync waits until every running replica has replayed the primary's current
// WAL insert position (the insert position, not the write position, so that
// asynchronously committed transactions are included): whatever the primary committed before the call is visible
// on the replicas after it.
func (c *Cluster) Sync(ctx context.Context) error {
	pos, err := c.Primary.QueryString(ctx, "SELECT pg_current_wal_insert_lsn()::text")
	if err != nil {
		return err
	}
	for _, r := range c.Replicas {
		if err := r.WaitReplayed(ctx, pos); err != nil {
			return err
		}
	}
	return nil
}

// Logs returns the server logs, for a failing test's output.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, s := range c.Servers() {
		data, _ := os.ReadFile(s.logPath())
		fmt.Fprintf(&b, "==== %s (:%d) ====\n%s\n", s.Name, s.port, data)
	}
	return b.String()
}

func appendConf(path string, settings map[string]string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	defer f.Close()
	var b strings.Builder
	b.WriteString("\n# pgcluster\n")
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}
