package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

var replicaName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// AddReplica adds a hot standby of the cluster's primary to the running
// cluster, waits until it streams, and appends it to Replicas. name is its
// Server.Name (lower-case letters, digits, '_'; also its cluster_name and
// the application_name the primary sees); "" picks the next "replicaN".
// The new standby gets Options.ReplicaSettings.
func (c *Cluster) AddReplica(ctx context.Context, name string) (*Server, error) {
	return c.AddReplicaFrom(ctx, name, c.Primary)
}

// AddReplicaFrom is AddReplica with another upstream: a promoted replica
// (to rebuild redundancy after a failover), or a standby, which then feeds
// the new one by cascading replication.
//
// It uses pg_basebackup where the binaries have it, else the non-exclusive
// backup functions (pg_backup_start, a file copy, pg_backup_stop). Either
// way a backup taken from a standby is only sound when the primary writes
// full-page images (a standby cannot force them for the backup, as a
// primary does), so a standby upstream needs full_page_writes on
// (Options.Fsync, or Settings{"full_page_writes": "on"}) and is refused
// otherwise. Tablespaces are not copied.
func (c *Cluster) AddReplicaFrom(ctx context.Context, name string, upstream *Server) (_ *Server, err error) {
	c.addMu.Lock()
	defer c.addMu.Unlock()
	if upstream == nil || upstream.cluster != c {
		return nil, errors.New("pgcluster: AddReplicaFrom: the upstream is not a server of this cluster")
	}
	c.mu.Lock()
	stopped := c.stopped
	c.mu.Unlock()
	if stopped {
		return nil, errors.New("pgcluster: AddReplica: the cluster is stopped")
	}
	if name == "" {
		name = c.nextReplicaName()
	}
	if !replicaName.MatchString(name) || name == "primary" {
		return nil, fmt.Errorf("pgcluster: AddReplica: bad name %q: use lower-case letters, digits and '_', starting with a letter", name)
	}
	for _, s := range c.Servers() {
		if s.Name == name {
			return nil, fmt.Errorf("pgcluster: AddReplica: a server named %q exists", name)
		}
	}
	if !upstream.Running() {
		return nil, fmt.Errorf("pgcluster: AddReplica %s: upstream %s is not running", name, upstream.Name)
	}

	fpw, err := upstream.QueryString(ctx, "SELECT (pg_is_in_recovery() AND NOT current_setting('full_page_writes')::bool)::text")
	if err != nil {
		return nil, err
	}
	if fpw == "true" {
		return nil, fmt.Errorf("pgcluster: AddReplica %s: upstream %s is a standby and full_page_writes is off: "+
			"a copy of it could hold torn pages; start the cluster with Options.Fsync (or Settings full_page_writes = on)", name, upstream.Name)
	}

	r := c.newServer(name)
	defer func() {
		if err != nil {
			_ = r.Stop()
			_ = os.RemoveAll(r.dataDir)
			_ = os.Remove(r.logPath())
		}
	}()
	if c.basebackup {
		err = c.basebackupFrom(ctx, upstream, r)
	} else {
		err = c.backupCopy(ctx, upstream, r)
	}
	if err != nil {
		return nil, err
	}
	if err := c.makeStandby(r, upstream); err != nil {
		return nil, err
	}
	if err := r.start(ctx, 0); err != nil {
		return nil, err
	}
	if err := r.WaitStreaming(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.Replicas = append(c.Replicas, r)
	c.mu.Unlock()
	c.logf("pgcluster: replica %s :%d streams from %s :%d", r.Name, r.Port(), upstream.Name, upstream.Port())
	return r, nil
}

func (c *Cluster) nextReplicaName() string {
	taken := map[string]bool{}
	for _, s := range c.Servers() {
		taken[s.Name] = true
	}
	for i := 1; ; i++ {
		if name := fmt.Sprintf("replica%d", i); !taken[name] {
			return name
		}
	}
}

// basebackupFrom clones upstream into r's data directory with pg_basebackup,
// which also writes standby.signal and primary_conninfo (-R).
func (c *Cluster) basebackupFrom(ctx context.Context, upstream, r *Server) error {
	return c.run(ctx, "pg_basebackup", "-h", "127.0.0.1", "-p", fmt.Sprint(upstream.Port()), "-U", "postgres",
		"-D", r.dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
}

// backupCopy clones a running upstream without pg_basebackup: between
// pg_backup_start and pg_backup_stop on one session the server forces
// full-page writes, so a plain copy of its files plus the WAL from the
// backup's start (streamed by the new standby; wal_keep_size retains it)
// restores to a consistent state. backup_label tells the standby where to
// start.
func (c *Cluster) backupCopy(ctx context.Context, upstream, r *Server) error {
	conn, err := pgx.Connect(ctx, upstream.DSN())
	if err != nil {
		return fmt.Errorf("pgcluster: connect %s: %w", upstream.Name, err)
	}
	defer conn.Close(context.Background()) // ends the backup if it is still running
	if _, err := conn.Exec(ctx, "SELECT pg_backup_start($1, true)", "pgcluster "+r.Name); err != nil {
		return fmt.Errorf("pgcluster: %s: pg_backup_start: %w", upstream.Name, err)
	}
	if err := c.copyDataDir(ctx, upstream.dataDir, r.dataDir, true); err != nil {
		return err
	}
	var label, spcmap string
	if err := conn.QueryRow(ctx, "SELECT labelfile, spcmapfile FROM pg_backup_stop(false)").Scan(&label, &spcmap); err != nil {
		return fmt.Errorf("pgcluster: %s: pg_backup_stop: %w", upstream.Name, err)
	}
	if strings.TrimSpace(spcmap) != "" {
		return fmt.Errorf("pgcluster: %s uses tablespaces, which AddReplica cannot copy", upstream.Name)
	}
	return c.writeFile(filepath.Join(r.dataDir, "backup_label"), label)
}

// makeStandby turns a copied data directory into a standby of upstream and
// adds what every replica gets: its cluster_name (the walreceiver's
// application_name, so pg_stat_replication says which replica is which) and
// the replica settings. Settings appended last win over the copied ones.
func (c *Cluster) makeStandby(r, upstream *Server) error {
	auto := map[string]string{"cluster_name": fmt.Sprintf("'%s'", r.Name)}
	if !c.basebackup {
		auto["primary_conninfo"] = fmt.Sprintf("'host=127.0.0.1 port=%d user=postgres sslmode=disable application_name=%s'",
			upstream.Port(), r.Name)
		if err := c.writeFile(filepath.Join(r.dataDir, "standby.signal"), ""); err != nil {
			return err
		}
	}
	if err := appendConf(filepath.Join(r.dataDir, "postgresql.auto.conf"), auto); err != nil {
		return err
	}
	if len(c.replicaSettings) > 0 {
		return appendConf(filepath.Join(r.dataDir, "postgresql.conf"), c.replicaSettings)
	}
	return nil
}

// writeFile writes a file the server will read, owned by the server user.
func (c *Cluster) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return c.user.chown(path)
}
