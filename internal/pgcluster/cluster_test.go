package pgcluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
)

// TestPrimaryAndReplica: with either standby method, the primary takes
// writes and the replica is a streaming hot standby that replays them and
// refuses writes.
func TestPrimaryAndReplica(t *testing.T) {
	forEachMethod(t, pgcluster.Options{}, func(t *testing.T, c *pgcluster.Cluster) {
		ctx := ctxFor(t)
		require.Len(t, c.Replicas, 1)
		primary, replica := open(t, c.Primary), open(t, c.Replicas[0])

		var inRecovery bool
		require.NoError(t, primary.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
		assert.False(t, inRecovery, "primary")
		require.NoError(t, replica.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
		assert.True(t, inRecovery, "replica")
		assert.Equal(t, "replica1 streaming", query(t, c.Primary,
			"SELECT string_agg(application_name || ' ' || state, ',') FROM pg_stat_replication"),
			"the primary sees its replica by name")

		_, err := primary.ExecContext(ctx, "CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1)")
		require.NoError(t, err)
		require.NoError(t, c.Sync(ctx))

		var n int
		require.NoError(t, replica.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n), "a read works on the replica")
		assert.Equal(t, 1, n)

		_, err = replica.ExecContext(ctx, "INSERT INTO t VALUES (2)")
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "write on replica: %v", err)
		assert.Equal(t, "25006", pgErr.Code, "read_only_sql_transaction")
	})
}

// TestVersion: Cluster.Version and Server.Version are what the servers
// report, and the settings pgcluster evens out across versions hold.
func TestVersion(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{})
	v := c.Version()
	assert.GreaterOrEqual(t, v.Major, pgcluster.MinMajor)
	for _, s := range c.Servers() {
		assert.Equal(t, strconv.Itoa(v.Num()), query(t, s, "SHOW server_version_num"), s.Name)
		assert.True(t, strings.HasPrefix(query(t, s, "SHOW server_version"), v.String()), s.Name)
		assert.Equal(t, v, s.Version(), s.Name)
		assert.Equal(t, "off", query(t, s, "SHOW data_checksums"), "%s: checksums off on every version (18 defaults to on)", s.Name)
		assert.Equal(t, "off", query(t, s, "SHOW fsync"), s.Name)
		assert.NotEqual(t, "0", query(t, s, "SHOW max_wal_senders"), "%s accepts replication connections", s.Name)
	}
	t.Logf("PostgreSQL %s from %s", v, c.BinDir())
}

func TestPauseResumeReplay(t *testing.T) {
	ctx := ctxFor(t)
	c := pgcluster.ForTest(t, pgcluster.Options{})
	r := c.Replicas[0]
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int)"))
	require.NoError(t, c.Sync(ctx))

	require.NoError(t, r.PauseReplay(ctx))
	target := insertLSN(t, c.Primary, "t", 1)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, r.WaitReplayed(short, target), context.DeadlineExceeded, "paused replica must not replay")
	assert.Equal(t, "0", query(t, r, "SELECT count(*)::text FROM t"))

	require.NoError(t, r.ResumeReplay(ctx))
	require.NoError(t, r.WaitReplayed(ctx, target))
	assert.Equal(t, "1", query(t, r, "SELECT count(*)::text FROM t"))
}

// TestReplicaSettings: ReplicaSettings reach the replicas (also one added
// later) and not the primary; recovery_min_apply_delay really delays replay.
func TestReplicaSettings(t *testing.T) {
	t.Parallel() // it mostly waits
	const delay = 2 * time.Second
	forEachMethod(t, pgcluster.Options{ReplicaSettings: map[string]string{"recovery_min_apply_delay": "'2s'"}},
		func(t *testing.T, c *pgcluster.Cluster) {
			ctx := ctxFor(t)
			added, err := c.AddReplica(ctx, "late")
			require.NoError(t, err)
			assert.Equal(t, "0", query(t, c.Primary, "SHOW recovery_min_apply_delay"), "primary")
			for _, r := range c.Replicas {
				assert.Equal(t, "2s", query(t, r, "SHOW recovery_min_apply_delay"), r.Name)
			}

			require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int)"))
			start := time.Now()
			target := insertLSN(t, c.Primary, "t", 1)
			short, cancel := context.WithTimeout(ctx, delay/4)
			defer cancel()
			assert.ErrorIs(t, added.WaitReplayed(short, target), context.DeadlineExceeded, "replayed before the delay")
			require.NoError(t, c.Sync(ctx))
			assert.GreaterOrEqual(t, time.Since(start), delay-100*time.Millisecond, "replay waited for the delay")
		})
}

// TestBadOptions: settings that would break postgresql.conf are refused
// before anything starts.
func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts pgcluster.Options
		want string
	}{
		{"name with newline", pgcluster.Options{Settings: map[string]string{"fsync = on\nwork_mem": "'1MB'"}}, "not a setting name"},
		{"value with newline", pgcluster.Options{Settings: map[string]string{"work_mem": "'1MB'\nfsync = on"}}, "spans lines"},
		{"empty value", pgcluster.Options{ReplicaSettings: map[string]string{"work_mem": " "}}, "ReplicaSettings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pgcluster.Start(ctxFor(t), tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestStopRemovesEverything(t *testing.T) {
	ctx := ctxFor(t)
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	require.NoError(t, err)
	_, err = c.AddReplica(ctx, "")
	require.NoError(t, err)
	dir := c.Dir()
	require.DirExists(t, dir)
	servers := c.Servers()
	require.Len(t, servers, 3)
	require.NoError(t, c.Stop())
	for _, s := range servers {
		assert.False(t, s.Running(), s.Name)
		assert.Zero(t, s.PID(), s.Name)
	}
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "directory %s left behind", dir)
	assert.NoError(t, c.Stop(), "second Stop")
	_, err = c.AddReplica(ctx, "")
	assert.Error(t, err, "AddReplica on a stopped cluster")
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv("FLYPG_PG_BIN", t.TempDir())
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{})
	require.Error(t, err)
	assert.ErrorIs(t, err, pgcluster.ErrNoBinaries)
	assert.Contains(t, err.Error(), "apt-get install -y postgresql")
	assert.Contains(t, err.Error(), "scripts/ensure-pg.sh")
}

// TestBinDirChecks: a bin directory needs initdb and postgres (not
// pg_basebackup), and binaries older than 15 or of no readable version are
// refused with ErrUnsupportedVersion.
func TestBinDirChecks(t *testing.T) {
	bin, err := pgcluster.FindBinDir()
	require.NoError(t, err)
	onlyInitdb := withoutBasebackup(t, bin)
	require.NoError(t, os.Remove(filepath.Join(onlyInitdb, "postgres")))

	for _, tc := range []struct {
		name    string
		bin     string
		env     bool // as FLYPG_PG_BIN rather than Options.BinDir
		is      error
		message string
	}{
		{"no postgres", onlyInitdb, false, pgcluster.ErrNoBinaries, "postgres"},
		{"no postgres in FLYPG_PG_BIN", onlyInitdb, true, pgcluster.ErrNoBinaries, "FLYPG_PG_BIN=" + onlyInitdb},
		{"PostgreSQL 14", fakeBin(t, `echo "postgres (PostgreSQL) 14.9"`), false, pgcluster.ErrUnsupportedVersion, "PostgreSQL 14.9; pgcluster needs 15"},
		{"no version", fakeBin(t, `echo "hello"`), false, pgcluster.ErrUnsupportedVersion, `"hello\n"`},
		{"postgres fails", fakeBin(t, `echo "cannot open shared object file" >&2; exit 127`), false, nil, "cannot open shared object file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := pgcluster.Options{BinDir: tc.bin}
			if tc.env {
				t.Setenv("FLYPG_PG_BIN", tc.bin)
				opts.BinDir = ""
			}
			_, err := pgcluster.Start(ctxFor(t), opts)
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.Contains(t, err.Error(), tc.message)
		})
	}
}

// BenchmarkStart measures how long a primary plus one streaming replica
// takes to come up, per standby method (pg_basebackup is the baseline).
func BenchmarkStart(b *testing.B) {
	for _, m := range methods(b) {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				c, err := pgcluster.Start(context.Background(), pgcluster.Options{BinDir: m.bin})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = c.Stop()
				b.StartTimer()
			}
		})
	}
}
