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

// waitFunction is what migration 0001 installed.
const waitFunction = "flypg.wait_for_lsn(pg_lsn,integer)"

func open(t *testing.T, s *pgcluster.Server) *sql.DB {
	db, err := sql.Open("pgx", s.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func installed(t *testing.T, ctx context.Context, db *sql.DB) bool {
	var ok bool
	require.NoError(t, db.QueryRowContext(ctx, "SELECT to_regprocedure($1) IS NOT NULL", waitFunction).Scan(&ok))
	return ok
}

func schemaExists(t *testing.T, ctx context.Context, db *sql.DB) bool {
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = 'flypg'").Scan(&n))
	return n == 1
}

// applyFile runs one migration file by itself, as a migration tool that
// stopped at that version would have.
func applyFile(t *testing.T, ctx context.Context, db *sql.DB, name string) {
	body, err := migrate.FS.ReadFile(name)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, string(body))
	require.NoError(t, err, name)
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
	assert.Equal(t, []string{"sql/0001_wait_for_lsn.up.sql", "sql/0002_no_wait_function.up.sql"}, ups)
}

// Up leaves no server-side wait function behind: 0001 installs it, 0002
// removes it again. Up and Down are idempotent and serialised.
func TestUpDownUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgcluster.ForTest(t, pgcluster.Options{})
	primary, replica := open(t, c.Primary), open(t, c.Replicas[0])

	require.NoError(t, migrate.Up(ctx, primary))
	require.NoError(t, migrate.Up(ctx, primary), "Up is idempotent")
	assert.False(t, installed(t, ctx, primary))
	assert.False(t, schemaExists(t, ctx, primary), "nothing of flypg's is left in the database")

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
	assert.ErrorIs(t, migrate.Up(ctx, replica), migrate.ErrStandby)
	assert.ErrorIs(t, migrate.Down(ctx, replica), migrate.ErrStandby)

	require.NoError(t, migrate.Down(ctx, primary))
	require.NoError(t, migrate.Down(ctx, primary), "Down is idempotent")
	assert.False(t, installed(t, ctx, primary))
	assert.False(t, schemaExists(t, ctx, primary))
	require.NoError(t, migrate.Up(ctx, primary), "up again")
	assert.False(t, installed(t, ctx, primary))
}

// A database migrated by an older flypg (0001 only) is upgraded by Up: the
// function disappears, on the standby too once replicated; 0002's down
// migration restores the 0001 state for tools that step back one version.
func TestUpgradeFrom0001(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgcluster.ForTest(t, pgcluster.Options{})
	primary, replica := open(t, c.Primary), open(t, c.Replicas[0])

	applyFile(t, ctx, primary, "sql/0001_wait_for_lsn.up.sql")
	require.NoError(t, c.Sync(ctx))
	require.True(t, installed(t, ctx, replica), "the old install, replicated")

	require.NoError(t, migrate.Up(ctx, primary))
	require.NoError(t, c.Sync(ctx))
	assert.False(t, installed(t, ctx, primary))
	assert.False(t, installed(t, ctx, replica), "gone from the standby too")

	applyFile(t, ctx, primary, "sql/0002_no_wait_function.down.sql")
	assert.True(t, installed(t, ctx, primary), "0002 down: back to version 1")
	var replayed sql.Null[lsn.LSN]
	require.NoError(t, primary.QueryRowContext(ctx, "SELECT flypg.wait_for_lsn('0/0', 1)").Scan(&replayed))
	assert.False(t, replayed.Valid, "the restored function works (NULL on a primary)")
	applyFile(t, ctx, primary, "sql/0002_no_wait_function.up.sql")
	assert.False(t, installed(t, ctx, primary))
}

// 0002 removes the schema only if flypg's function was all it held.
// (0001's down refuses to drop a schema with the user's objects in it.)
func TestUserObjectsKeepTheSchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: -1})
	primary := open(t, c.Primary)
	applyFile(t, ctx, primary, "sql/0001_wait_for_lsn.up.sql")
	_, err := primary.ExecContext(ctx, "CREATE TABLE flypg.mine (id int)")
	require.NoError(t, err)

	require.NoError(t, migrate.Up(ctx, primary))
	assert.False(t, installed(t, ctx, primary))
	assert.True(t, schemaExists(t, ctx, primary), "the schema holds the user's table")
	var n int
	require.NoError(t, primary.QueryRowContext(ctx, "SELECT count(*) FROM flypg.mine").Scan(&n))
	// Down ends with 0001's down, which refuses (RESTRICT) to drop a schema
	// holding objects of the user's: an error, in one rolled-back
	// transaction, rather than lost data.
	assert.ErrorContains(t, migrate.Down(ctx, primary), "0001_wait_for_lsn.down.sql")
	require.NoError(t, primary.QueryRowContext(ctx, "SELECT count(*) FROM flypg.mine").Scan(&n), "the table survived")
	assert.False(t, installed(t, ctx, primary), "Down rolled back as a whole")
}

// Where the old function is still installed (a database nobody migrated
// since 0001), the tracker does not call it: waiting holds no snapshot.
func TestTrackerIgnoresOldWaitFunction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pgcluster.ForTest(t, pgcluster.Options{Settings: map[string]string{"track_functions": "all"}})
	applyFile(t, ctx, open(t, c.Primary), "sql/0001_wait_for_lsn.up.sql")
	primary, err := pgx.Connect(ctx, c.Primary.DSN())
	require.NoError(t, err)
	defer primary.Close(ctx)
	_, err = primary.Exec(ctx, "CREATE TABLE t (id int)")
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx))

	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN(), WaitFunctionAfter: time.Nanosecond})
	require.NoError(t, replica.PauseReplay(ctx))
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")
	done := make(chan error, 1)
	go func() { done <- tr.Wait(ctx, target) }()
	// A long wait: the old tracker switched to the function after 8 ms.
	require.Eventually(t, func() bool { return tr.Stats().Polls >= 5 }, 10*time.Second, time.Millisecond)
	require.NoError(t, replica.ResumeReplay(ctx))
	require.NoError(t, <-done)

	s := tr.Stats()
	assert.Zero(t, s.WaitCalls)
	assert.False(t, s.UsingWaitFunction)
	require.NoError(t, tr.Close()) // function-call statistics are flushed when a backend exits
	calls, err := replica.QueryString(ctx, `SELECT coalesce(sum(calls), 0)::text FROM pg_stat_user_functions WHERE schemaname = 'flypg'`)
	require.NoError(t, err)
	assert.Equal(t, "0", calls, "the function was never called on the standby")
}
