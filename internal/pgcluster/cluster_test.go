package pgcluster_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg/internal/pgcluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, s *pgcluster.Server) *sql.DB {
	db, err := sql.Open("pgx", s.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPrimaryAndReplica(t *testing.T) {
	ctx := ctxFor(t)
	c := pgcluster.ForTest(t, pgcluster.Options{})
	require.Len(t, c.Replicas, 1)
	primary, replica := open(t, c.Primary), open(t, c.Replicas[0])

	var inRecovery bool
	require.NoError(t, primary.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	assert.False(t, inRecovery, "primary")
	require.NoError(t, replica.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	assert.True(t, inRecovery, "replica")

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
}

func TestPauseResumeReplay(t *testing.T) {
	ctx := ctxFor(t)
	c := pgcluster.ForTest(t, pgcluster.Options{})
	r := c.Replicas[0]
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int)"))
	require.NoError(t, c.Sync(ctx))

	require.NoError(t, r.PauseReplay(ctx))
	require.NoError(t, c.Primary.Exec(ctx, "INSERT INTO t VALUES (1)"))
	target, err := c.Primary.QueryString(ctx, "SELECT pg_current_wal_lsn()::text")
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, r.WaitReplayed(short, target), context.DeadlineExceeded, "paused replica must not replay")
	n, err := r.QueryString(ctx, "SELECT count(*)::text FROM t")
	require.NoError(t, err)
	assert.Equal(t, "0", n)

	require.NoError(t, r.ResumeReplay(ctx))
	require.NoError(t, r.WaitReplayed(ctx, target))
	n, err = r.QueryString(ctx, "SELECT count(*)::text FROM t")
	require.NoError(t, err)
	assert.Equal(t, "1", n)
}

func TestKillRestartPromote(t *testing.T) {
	ctx := ctxFor(t)
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 2})
	require.Len(t, c.Replicas, 2)
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int)"))

	r := c.Replicas[0]
	port := r.Port()
	require.NoError(t, r.Kill())
	assert.False(t, r.Running())
	_, err := r.QueryString(ctx, "SELECT 1")
	assert.Error(t, err, "killed server answers")

	require.NoError(t, r.Restart(ctx))
	assert.Equal(t, port, r.Port(), "restart keeps the port")
	require.NoError(t, r.WaitStreaming(ctx))
	require.NoError(t, c.Sync(ctx))

	p := c.Replicas[1]
	require.NoError(t, p.Promote(ctx))
	rec, err := p.QueryString(ctx, "SELECT pg_is_in_recovery()::text")
	require.NoError(t, err)
	assert.Equal(t, "false", rec)
	require.NoError(t, p.Exec(ctx, "INSERT INTO t VALUES (1)"), "promoted replica accepts writes")
}

func TestStopRemovesEverything(t *testing.T) {
	ctx := ctxFor(t)
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	require.NoError(t, err)
	dir := c.Dir()
	require.DirExists(t, dir)
	servers := c.Servers()
	require.NoError(t, c.Stop())
	for _, s := range servers {
		assert.False(t, s.Running(), s.Name)
	}
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "directory %s left behind", dir)
	assert.NoError(t, c.Stop(), "second Stop")
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv("FLYPG_PG_BIN", t.TempDir())
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{})
	require.Error(t, err)
	assert.ErrorIs(t, err, pgcluster.ErrNoBinaries)
	assert.Contains(t, err.Error(), "apt-get install -y postgresql")
}

// BenchmarkStart measures how long a primary plus one streaming replica
// takes to come up.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		c, err := pgcluster.Start(context.Background(), pgcluster.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = c.Stop()
		b.StartTimer()
	}
}
