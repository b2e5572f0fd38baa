package migrate_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/migrate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, s *pgcluster.Server) *sql.DB {
	db, err := sql.Open("pgx", s.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func installed(t *testing.T, ctx context.Context, db *sql.DB) bool {
	var ok bool
	require.NoError(t, db.QueryRowContext(ctx, "SELECT to_regprocedure($1) IS NOT NULL", lsn.WaitFunction).Scan(&ok))
	return ok
}

func newTracker(t *testing.T, cfg lsn.Config) *lsn.Tracker {
	tr, err := lsn.NewTracker(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	return tr
}

func commit(t *testing.T, ctx context.Context, primary *pgx.Conn, stmt string) lsn.LSN {
	_, err := primary.Exec(ctx, stmt)
	require.NoError(t, err)
	var pos lsn.LSN
	require.NoError(t, primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&pos))
	return pos
}

func TestFilesAreEmbeddedInPairs(t *testing.T) {
	ups, err := migrateGlob("sql/*.up.sql")
	require.NoError(t, err)
	downs, err := migrateGlob("sql/*.down.sql")
	require.NoError(t, err)
	require.NotEmpty(t, ups)
	assert.Len(t, downs, len(ups))
	assert.Contains(t, ups, "sql/0001_wait_for_lsn.up.sql")
}

func TestUpDownUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgcluster.ForTest(t, pgcluster.Options{})
	primary, replica := open(t, c.Primary), open(t, c.Replicas[0])

	require.NoError(t, migrate.Up(ctx, primary))
	require.NoError(t, migrate.Up(ctx, primary), "Up is idempotent")
	assert.True(t, installed(t, ctx, primary))

	// Nodes starting together: the advisory lock serialises them.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range cap(errs) {
		wg.Go(func() { errs <- migrate.Up(ctx, primary) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	require.NoError(t, c.Sync(ctx))
	assert.True(t, installed(t, ctx, replica), "the function replicates to the standby")
	assert.ErrorIs(t, migrate.Up(ctx, replica), migrate.ErrStandby)

	// The function itself: on the standby it returns the replay position, on
	// the primary NULL.
	var replayed, current lsn.LSN
	require.NoError(t, replica.QueryRowContext(ctx, "SELECT flypg.wait_for_lsn('0/0', 10)").Scan(&replayed))
	require.NoError(t, replica.QueryRowContext(ctx, "SELECT pg_last_wal_replay_lsn()").Scan(&current))
	assert.Equal(t, current, replayed)
	var onPrimary sql.Null[lsn.LSN]
	require.NoError(t, primary.QueryRowContext(ctx, "SELECT flypg.wait_for_lsn('0/0', 10)").Scan(&onPrimary))
	assert.False(t, onPrimary.Valid)
	require.NoError(t, replica.QueryRowContext(ctx, "SELECT flypg.wait_for_lsn('FFFFFFFF/0', 5)").Scan(&replayed))
	assert.Less(t, replayed, lsn.LSN(0xFFFFFFFF_00000000), "times out with the replay position")

	require.NoError(t, migrate.Down(ctx, primary))
	require.NoError(t, migrate.Down(ctx, primary), "Down is idempotent")
	assert.False(t, installed(t, ctx, primary))
	var schemas int
	require.NoError(t, primary.QueryRowContext(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = 'flypg'").Scan(&schemas))
	assert.Zero(t, schemas)

	require.NoError(t, migrate.Up(ctx, primary))
	assert.True(t, installed(t, ctx, primary), "up again")
}

// The tracker finds the function on the standby and waits with it; waiters
// with a smaller target than the call in flight are not held up by it.
func TestTrackerUsesWaitFunction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgcluster.ForTest(t, pgcluster.Options{})
	require.NoError(t, migrate.Up(ctx, open(t, c.Primary)))
	primary, err := pgx.Connect(ctx, c.Primary.DSN())
	require.NoError(t, err)
	defer primary.Close(ctx)
	_, err = primary.Exec(ctx, "CREATE TABLE t (id int)")
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx))

	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN(), WaitFunctionAfter: time.Nanosecond})
	require.NoError(t, tr.Wait(ctx, commit(t, ctx, primary, "INSERT INTO t VALUES (0)")))
	assert.True(t, tr.Stats().UsingWaitFunction)

	require.NoError(t, replica.PauseReplay(ctx))
	small := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")
	large := commit(t, ctx, primary, "INSERT INTO t VALUES (2)")
	results := make(chan error, 2)
	go func() { results <- tr.Wait(ctx, large) }()
	require.Eventually(t, func() bool { return tr.Stats().WaitCalls > 1 }, 10*time.Second, time.Millisecond,
		"a wait-function call for the large target is in flight")
	go func() { results <- tr.Wait(ctx, small) }()
	require.Eventually(t, func() bool { return tr.Stats().Waiters == 2 }, 10*time.Second, time.Millisecond)
	require.NoError(t, replica.ResumeReplay(ctx))
	assert.NoError(t, <-results)
	assert.NoError(t, <-results)

	n, err := replica.QueryString(ctx, "SELECT count(*)::text FROM t")
	require.NoError(t, err)
	assert.Equal(t, "3", n)
	s := tr.Stats()
	assert.True(t, s.UsingWaitFunction)
	assert.Equal(t, s.Polls, s.WaitCalls, "no client-side polls at all")
	t.Logf("stats: %+v", s)

	// With the default settings the function serves only long waits, and
	// without it (after Down, on a new connection) the tracker polls.
	require.NoError(t, migrate.Down(ctx, open(t, c.Primary)))
	require.NoError(t, c.Sync(ctx))
	plain := newTracker(t, lsn.Config{DSN: replica.DSN()})
	require.NoError(t, plain.Wait(ctx, commit(t, ctx, primary, "INSERT INTO t VALUES (3)")))
	assert.False(t, plain.Stats().UsingWaitFunction)
	assert.Zero(t, plain.Stats().WaitCalls)
}
