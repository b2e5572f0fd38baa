package flypg_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/router"
)

// otherCallersSee runs n forwarded writes from fresh callers, each
// recording expr as evaluated on whatever primary connection it got, and
// returns how many saw want.
func otherCallersSee(t *testing.T, r *regions, expr, want string, n int) int {
	t.Helper()
	ctx := testCtx(t)
	r.exec(t, "DROP TABLE IF EXISTS seen; CREATE TABLE seen (v text)")
	for range n {
		_, err := r.laxDB.ExecContext(ctx, "INSERT INTO seen SELECT "+expr)
		require.NoError(t, err)
	}
	var count int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM seen WHERE v IS NOT DISTINCT FROM $1", want).Scan(&count))
	return count
}

// No session state a statement leaves on a primary connection reaches
// another caller: the serving session itself is asked, whatever the SQL
// text looked like.
func TestSessionStateNeverReachesAnotherCaller(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	r.laxDB.SetMaxOpenConns(1) // the callers after share the serving node's pool, not this one
	r.exec(t, `CREATE OR REPLACE FUNCTION set_tenant_and_write(t text) RETURNS int LANGUAGE plpgsql AS $$
		BEGIN PERFORM set_config('app.tenant', t, false); CREATE TEMP TABLE IF NOT EXISTS scratch (x int);
		INSERT INTO scratch VALUES (1); RETURN 1; END $$`)
	cases := []struct{ name, stmt string }{
		{"set_config in a write", "WITH s AS (SELECT set_config('app.tenant', 'A', false)) INSERT INTO seen SELECT * FROM s"},
		{"SET in a function", "SELECT set_tenant_and_write('A')"},
		{"SET before a write", "SET app.tenant = 'A'; INSERT INTO seen VALUES ('A')"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.exec(t, "DROP TABLE IF EXISTS seen; CREATE TABLE seen (v text)")
			_, err := r.laxDB.ExecContext(ctx, tc.stmt)
			require.NoError(t, err)
			assert.Zero(t, otherCallersSee(t, r, "current_setting('app.tenant', true)", "A", 5), "a later caller saw the setting")
			assert.Zero(t, otherCallersSee(t, r, "(pg_my_temp_schema() <> 0)::text", "true", 5), "a later caller inherited a temporary namespace")
		})
	}
	// set_config in a read is the local session's own business, as pgx
	// would do it on that session.
	conn, err := r.laxDB.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	before := r.lax.Stats().Forwarded
	var v string
	require.NoError(t, conn.QueryRowContext(ctx, "SELECT set_config('app.tenant', 'B', false)").Scan(&v))
	require.NoError(t, conn.QueryRowContext(ctx, "SELECT current_setting('app.tenant')").Scan(&v))
	assert.Equal(t, "B", v, "the local session has it")
	assert.Equal(t, before, r.lax.Stats().Forwarded, "nothing was forwarded")
}

// Session state that cannot follow the caller in autocommit is refused
// with an error that names the alternative, and nothing is left behind
// on either server.
func TestSessionBoundStatementsAreRefused(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP SEQUENCE IF EXISTS sq; CREATE SEQUENCE sq")
	r.exec(t, `CREATE OR REPLACE FUNCTION lock_it() RETURNS boolean LANGUAGE sql AS $$ SELECT pg_try_advisory_lock(4711) $$`)
	ctx := testCtx(t)
	cases := []struct {
		name, stmt string
		bound      router.Bound
		mentions   string
	}{
		{"session advisory lock", "SELECT pg_advisory_lock(4711)", router.BoundAdvisoryLock, "pg_advisory_xact_lock"},
		{"try lock", "SELECT pg_try_advisory_lock(4711)", router.BoundAdvisoryLock, "BeginTx"},
		{"currval", "SELECT currval('sq')", router.BoundSequenceState, "RETURNING"},
		{"lastval", "SELECT lastval()", router.BoundSequenceState, "RETURNING"},
		{"temp table", "CREATE TEMP TABLE tt (x int)", router.BoundTempObject, "BeginTx"},
		{"pg_temp", "CREATE TABLE pg_temp.tt (x int)", router.BoundTempObject, "BeginTx"},
		{"E-string continuation hiding a lock", "SELECT E'a'\n'\\'', pg_try_advisory_lock(4711) --'", router.BoundAdvisoryLock, "BeginTx"},
		{"a function taking a lock on the replica", "SELECT lock_it()", router.BoundAdvisoryLock, "BeginTx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out any
			err := r.laxDB.QueryRowContext(ctx, tc.stmt).Scan(&out)
			var se *flypg.SessionStateError
			require.ErrorAs(t, err, &se, "got %v", err)
			assert.Equal(t, tc.bound.String(), se.What)
			assert.Contains(t, err.Error(), tc.mentions)
			assert.False(t, se.Committed)
			for name, db := range map[string]*sql.DB{"primary": r.primary, "replica": r.replica} {
				var held int
				require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").Scan(&held))
				assert.Zero(t, held, "no advisory lock left on the %s", name)
			}
		})
	}
	// Inside a transaction they run where it runs, as on the primary.
	tx, err := r.laxDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	var ok bool
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock(4711)").Scan(&ok))
	assert.True(t, ok)
	var id, cur int64
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT nextval('sq')").Scan(&id))
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT currval('sq')").Scan(&cur))
	assert.Equal(t, id, cur)
	require.NoError(t, tx.Commit())
}

// standard_conforming_strings=off: the local session's setting changes how
// '…' strings lex, and the classification follows it.
func TestNonStandardStringsAreLexedAsTheSessionDoes(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	conn, err := r.laxDB.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "SET standard_conforming_strings = off")
	require.NoError(t, err)
	var out any
	err = conn.QueryRowContext(ctx, `SELECT 'a\'', pg_try_advisory_lock(4712) --'`).Scan(&out)
	var se *flypg.SessionStateError
	require.ErrorAs(t, err, &se)
	var held int
	require.NoError(t, r.replica.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").Scan(&held))
	assert.Zero(t, held)
}

// LISTEN cannot work on a replica; UNLISTEN is a harmless no-op there.
func TestListenUnlisten(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	_, err := r.laxDB.ExecContext(ctx, "LISTEN events")
	assert.ErrorContains(t, err, "primary")
	_, err = r.laxDB.ExecContext(ctx, "UNLISTEN *")
	assert.NoError(t, err)
	_, err = r.laxDB.ExecContext(ctx, "UNLISTEN events")
	assert.NoError(t, err)
}

// A function that takes a session advisory lock and writes runs on the
// primary; its lock cannot survive (its connection is closed rather than
// pooled), and the caller is told so — with the write's commit awaited.
func TestLockTakenByAForwardedWriteIsReported(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, `DROP TABLE IF EXISTS lk; CREATE TABLE lk (id int);
		CREATE OR REPLACE FUNCTION lock_and_write() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_lock(4713); INSERT INTO lk VALUES (1); RETURN 1; END $$`)
	ctx := testCtx(t)
	_, err := r.laxDB.ExecContext(ctx, "SELECT lock_and_write()")
	var se *flypg.SessionStateError
	require.ErrorAs(t, err, &se)
	assert.True(t, se.Committed, "the write committed: the error says so")
	assert.False(t, errors.Is(err, flypg.ErrUnknownOutcome))
	var n int
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT count(*) FROM lk").Scan(&n))
	assert.Equal(t, 1, n, "committed and awaited")
	assert.Eventually(t, func() bool {
		return r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4713").Scan(&n) == nil && n == 0
	}, 10*time.Second, 10*time.Millisecond, "the lock is not left on a pooled connection: its session was closed")
	_ = context.Background
}

// In a read-only transaction (local, on the standby) an advisory lock
// would exclude nobody on the primary: refused, and nothing left held.
func TestAdvisoryLocksRefusedInReadOnlyTransactions(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, `CREATE OR REPLACE FUNCTION lock_x() RETURNS void LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(4714) $$`)
	ctx := testCtx(t)
	for _, stmt := range []string{"SELECT pg_advisory_xact_lock(4714)", "SELECT pg_advisory_lock(4714)", "SELECT lock_x()"} {
		tx, err := r.laxDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, stmt)
		var se *flypg.SessionStateError
		assert.ErrorAs(t, err, &se, stmt)
		require.NoError(t, tx.Rollback())
		var held int
		require.NoError(t, r.replica.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").Scan(&held))
		assert.Zero(t, held, stmt)
	}
	// Reads are untouched.
	tx, err := r.laxDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	var rec bool
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.True(t, rec)
	require.NoError(t, tx.Commit())
}
