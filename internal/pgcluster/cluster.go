package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configures a cluster. The zero value starts a primary and one
// replica with fsync off, using the binaries FindBinDir finds.
type Options struct {
	// Replicas is the number of hot standbys. 0 means 1; a negative value
	// means none.
	Replicas int
	// Fsync keeps fsync (and full_page_writes) on. Off by default: tests
	// need speed, not durability across power loss.
	Fsync bool
	// Settings are extra postgresql.conf settings for every server, written
	// as in the file: strings quoted ("'250ms'"), numbers and booleans bare.
	Settings map[string]string
	// ReplicaSettings are extra postgresql.conf settings for the replicas
	// only (also those AddReplica adds), applied after Settings; e.g.
	// {"recovery_min_apply_delay": "'2s'"} for a lagging standby. A
	// promoted replica keeps them.
	ReplicaSettings map[string]string
	// BinDir is the directory of initdb and postgres (and pg_basebackup,
	// if it is there); by default FindBinDir's answer ($FLYPG_PG_BIN, …).
	BinDir string
	// Logf receives progress lines (e.g. t.Logf). Nil discards them.
	Logf func(format string, args ...any)
	// KeepSignals leaves SIGINT/SIGTERM to the caller, which then must Stop
	// the cluster itself. By default an interrupt stops every running
	// cluster and exits, so a ^C'd test leaves nothing behind.
	KeepSignals bool
}

// Cluster is a running primary and its replicas.
//
// Replicas grows when AddReplica adds one; read it from the goroutine that
// adds replicas (or after it has finished).
type Cluster struct {
	Primary  *Server
	Replicas []*Server

	dir             string
	bin             string
	version         Version
	basebackup      bool // pg_basebackup is in bin
	user            *osUser
	replicaSettings map[string]string
	logf            func(format string, args ...any)

	mu      sync.Mutex // guards Replicas and stopped (Stop may run on the signal handler)
	stopped bool
	addMu   sync.Mutex // serialises AddReplica
}

// baseSettings make a small, fast server fit for streaming replication on
// loopback, the same on every supported version. hot_standby_feedback keeps long replica reads from being
// cancelled by vacuum on the primary, which would make tests flaky. Every
// server, replicas too, accepts replication connections (max_wal_senders,
// and initdb's pg_hba.conf trusts replication from loopback), so a standby
// can feed a cascaded standby or a replication client.
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
	"wal_retrieve_retry_interval":  "'100ms'", // a replica reconnects to a restarted upstream at once, not after 5 s
	"log_min_messages":             "warning",
	"log_line_prefix":              "'%m [%p] '",
	"track_activities":             "on",
	"dynamic_shared_memory_type":   "mmap", // files in the data dir: a killed server leaks no /dev/shm segment
	"max_prepared_transactions":    "10",
}

// Start creates and starts a cluster. On error nothing is left running.
//
// Replicas are made with pg_basebackup when the bin directory has it, and
// otherwise as copies of the freshly initialised primary taken before it
// first starts (AddReplica then uses the backup functions); either way
// they stream from the primary and replay it as hot standbys.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	bin := opts.BinDir
	if bin == "" {
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if err := checkBinDir(bin); err != nil {
		return nil, fmt.Errorf("pgcluster: BinDir %s: %w", bin, err)
	}
	if err := checkSettings("Settings", opts.Settings); err != nil {
		return nil, err
	}
	if err := checkSettings("ReplicaSettings", opts.ReplicaSettings); err != nil {
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
	c := &Cluster{
		dir: dir, bin: bin, user: u, logf: opts.Logf,
		basebackup:      executable(filepath.Join(bin, "pg_basebackup")) == nil,
		replicaSettings: maps.Clone(opts.ReplicaSettings),
	}
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
	// Run as the server user, so that binaries it cannot reach (under a
	// private home directory, say) fail here, with their path in the error.
	out, err := c.output(ctx, "postgres", "--version")
	if err != nil {
		return nil, err
	}
	if c.version, err = parseVersion(out); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, filepath.Join(bin, "postgres"))
	}

	started := time.Now()
	primary := &Server{Name: "primary", cluster: c, dataDir: filepath.Join(dir, "primary")}
	if err := c.run(ctx, "initdb", initdbArgs(c.version, primary.dataDir)...); err != nil {
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

	n := opts.Replicas
	if n == 0 {
		n = 1
	}
	var copies []*Server
	if !c.basebackup {
		// A cleanly shut down data directory (initdb's) copied before the
		// primary first starts is a valid standby base: the primary's WAL
		// continues exactly from the checkpoint the copy begins at.
		for i := 1; i <= n; i++ {
			r := c.newServer(fmt.Sprintf("replica%d", i))
			if err := c.copyDataDir(ctx, primary.dataDir, r.dataDir, false); err != nil {
				return nil, err
			}
			copies = append(copies, r)
		}
	}
	if err := primary.start(ctx, 0); err != nil {
		return nil, err
	}
	for i := 1; i <= n; i++ {
		var r *Server
		if c.basebackup {
			r = c.newServer(fmt.Sprintf("replica%d", i))
			if err := c.basebackupFrom(ctx, primary, r); err != nil {
				return nil, err
			}
		} else {
			r = copies[i-1]
		}
		if err := c.makeStandby(r, primary); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.Replicas = append(c.Replicas, r)
		c.mu.Unlock()
		if err := r.start(ctx, 0); err != nil {
			return nil, err
		}
	}
	for _, r := range c.Replicas {
		if err := r.WaitStreaming(ctx); err != nil {
			return nil, err
		}
	}
	c.logf("pgcluster: PostgreSQL %s primary :%d and %d replica(s) ready in %v (dir %s)",
		c.version, primary.port, len(c.Replicas), time.Since(started).Round(time.Millisecond), dir)
	return c, nil
}

// Dir is the cluster's temporary directory (data directories and logs).
func (c *Cluster) Dir() string { return c.dir }

// BinDir is the directory of the binaries the cluster runs.
func (c *Cluster) BinDir() string { return c.bin }

// Version is the PostgreSQL version of the cluster's binaries.
func (c *Cluster) Version() Version { return c.version }

// Servers returns the primary followed by the replicas.
func (c *Cluster) Servers() []*Server {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
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
// asynchronously committed transactions are included): whatever the primary
// committed before the call is visible on the replicas after it. A stopped
// replica is skipped; one that does not follow the primary (promoted, or
// replaying a paused or delayed stream) makes Sync wait until ctx ends.
func (c *Cluster) Sync(ctx context.Context) error {
	pos, err := c.Primary.QueryString(ctx, "SELECT pg_current_wal_insert_lsn()::text")
	if err != nil {
		return err
	}
	for _, r := range c.Servers()[1:] {
		if !r.Running() {
			continue
		}
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
		fmt.Fprintf(&b, "==== %s (:%d) ====\n%s\n", s.Name, s.Port(), data)
	}
	return b.String()
}

func (c *Cluster) newServer(name string) *Server {
	return &Server{Name: name, cluster: c, dataDir: filepath.Join(c.dir, name)}
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// checkSettings refuses what would corrupt postgresql.conf rather than set
// one setting: a line break or a stray name.
func checkSettings(field string, settings map[string]string) error {
	for k, v := range settings {
		if !settingName.MatchString(k) {
			return fmt.Errorf("pgcluster: %s: %q is not a setting name", field, k)
		}
		if strings.ContainsAny(v, "\n\r\x00") || strings.TrimSpace(v) == "" {
			return fmt.Errorf("pgcluster: %s: %s: value %q is empty or spans lines", field, k, v)
		}
	}
	return nil
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
