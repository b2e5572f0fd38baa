package flypg_test

// Regression tests from an independent review of the core (issues 9 and
// 13): each failed before the fix of the bug it describes.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/router"
)

// A statement the local replica cannot describe (its table is not
// replayed yet) is described on the primary. When that describe's outcome
// is unknown (here: the caller's deadline passes while the primary's parse
// waits for a lock), describeRemote returns errors.Unwrap of a two-%w
// error — nil — with a nil description, and the caller's process panics.
func TestRegressionRemoteDescribeUnknownOutcomePanics(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	r.exec(t, "DROP TABLE IF EXISTS rv_desc")
	require.NoError(t, r.c.Replicas[0].PauseReplay(ctx))
	defer func() { require.NoError(t, r.c.Replicas[0].ResumeReplay(ctx)) }()
	_, err := r.primary.ExecContext(ctx, "CREATE TABLE rv_desc (id int)")
	require.NoError(t, err)
	// Parse analysis of a statement on rv_desc waits for this lock.
	lock, err := r.primary.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback() }()
	_, err = lock.ExecContext(ctx, "LOCK TABLE rv_desc IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)

	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	assert.NotPanics(t, func() {
		_, err = r.laxDB.ExecContext(cctx, "INSERT INTO rv_desc VALUES ($1)", 1)
	}, "an unknown describe outcome must be an error, not a panic")
	assert.Error(t, err)
}

// AfterLSN: "statements under ctx first wait until the local database has
// replayed l". A read-only transaction's statements run on the local
// replica without waiting: a causal token is ignored by them.
func TestRegressionAfterLSNIgnoredByReadOnlyTransaction(t *testing.T) {
	r := startRegions(t, func(c *flypg.Config) { c.AwaitTimeout = 300 * time.Millisecond })
	ctx := testCtx(t)
	r.exec(t, "DROP TABLE IF EXISTS rv_ro; CREATE TABLE rv_ro (id int)")
	require.NoError(t, r.c.Replicas[0].PauseReplay(ctx))
	defer func() { require.NoError(t, r.c.Replicas[0].ResumeReplay(ctx)) }()
	_, err := r.primary.ExecContext(ctx, "INSERT INTO rv_ro VALUES (1)")
	require.NoError(t, err)
	var text string
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text))
	l, err := lsn.Parse(text)
	require.NoError(t, err)

	// Autocommit under AfterLSN: never stale (control).
	var n int
	require.NoError(t, r.laxDB.QueryRowContext(flypg.AfterLSN(ctx, l), "SELECT count(*) FROM rv_ro").Scan(&n))
	require.Equal(t, 1, n, "autocommit reads honour AfterLSN")

	tx, err := r.laxDB.BeginTx(flypg.AfterLSN(ctx, l), &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	require.NoError(t, tx.QueryRowContext(flypg.AfterLSN(ctx, l), "SELECT count(*) FROM rv_ro").Scan(&n))
	assert.Equal(t, 1, n, "a read-only transaction under AfterLSN read a replica that has not replayed l")
}

// A forwarded write that fails (here 23505) after a function in it took a
// session advisory lock: the pooled primary connection goes back to the
// pool without the session check, holding the lock for every later caller.
func TestRegressionFailedForwardedWriteLeaksSessionLock(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	r.exec(t, `DROP TABLE IF EXISTS rv_lk; CREATE TABLE rv_lk (id int PRIMARY KEY); INSERT INTO rv_lk VALUES (1);
		CREATE OR REPLACE FUNCTION rv_lock_id(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_lock(4242); RETURN i; END $$`)
	_, err := r.laxDB.ExecContext(ctx, "INSERT INTO rv_lk SELECT rv_lock_id($1)", 1)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23505", pgErr.Code)
	held := func() int {
		var n int
		require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242").Scan(&n))
		return n
	}
	assert.Eventually(t, func() bool { return held() == 0 }, 3*time.Second, 20*time.Millisecond,
		"a pooled primary connection still holds the failed statement's session advisory lock")
}

// The same on the replica side: an Unsure statement whose function takes a
// session advisory lock and then writes is refused by the standby (25006)
// and retried on the primary — but the lock it took on the standby stays
// on the local pooled connection (settleUnsure only runs on success).
func TestRegressionRetriedUnsureLeaksStandbyLock(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	r.exec(t, `DROP TABLE IF EXISTS rv_lk2; CREATE TABLE rv_lk2 (id int PRIMARY KEY);
		CREATE OR REPLACE FUNCTION rv_lock_ins(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_lock(4343); INSERT INTO rv_lk2 VALUES (i); RETURN i; END $$`)
	var v int
	err := r.laxDB.QueryRowContext(ctx, "SELECT rv_lock_ins($1)", 5).Scan(&v)
	var se *flypg.SessionStateError
	require.ErrorAs(t, err, &se, "the primary-side lock is reported lost")
	require.True(t, se.Committed)
	var n int
	require.NoError(t, r.replica.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4343").Scan(&n))
	assert.Zero(t, n, "the standby still holds the session advisory lock the refused attempt took on lax's pooled connection")
}

// Pipeline: a statement with arguments whose table is created by a queued
// (not yet sent) statement of the same transaction is described on a
// pooled primary connection, outside the transaction, and fails — dooming
// a transaction pgx runs fine.
func TestRegressionPipelinedDescribeBeforeFirstSend(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	r.exec(t, "DROP TABLE IF EXISTS rv_pd")
	tx, err := r.laxDB.BeginTx(flypg.Pipeline(ctx), nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, "CREATE TABLE rv_pd (id int)")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO rv_pd VALUES ($1)", 1)
	assert.NoError(t, err, "pgx runs this transaction")
	assert.NoError(t, tx.Commit())
}

// "Stream large results … so size is not a failure mode": a single value
// larger than wire.MaxMessage (16 MiB) makes the serving node's reply fail
// as if the primary connection broke: a read fails, and a write that
// committed returns ErrUnknownOutcome (and a remote transaction is killed).
func TestRegressionLargeValueInResult(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	r.exec(t, "DROP TABLE IF EXISTS rv_big; CREATE TABLE rv_big (id int PRIMARY KEY, v text)")
	const size = 17 << 20
	var s string
	err := r.laxDB.QueryRowContext(flypg.OnPrimary(ctx), fmt.Sprintf("SELECT repeat('x', %d)", size)).Scan(&s)
	assert.NoError(t, err, "an OnPrimary read of one 17 MiB value")
	assert.Len(t, s, size)

	err = r.laxDB.QueryRowContext(ctx, "INSERT INTO rv_big VALUES (1, $1) RETURNING v", strings.Repeat("y", size)).Scan(&s)
	assert.NoError(t, err, "INSERT … RETURNING a 17 MiB value")
	assert.False(t, errors.Is(err, flypg.ErrUnknownOutcome), "a deterministic, committed write reported as an unknown outcome")
	var n int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM rv_big").Scan(&n))
	assert.Equal(t, 1, n, "(it committed)")
}

// wire.DefaultLimits.MaxElems (2^18) bounds a whole Batch, but a pipelined
// transaction queues up to 1000 statements / 1 MiB of query text without
// counting arguments: three bulk INSERTs of 30 000 arguments each (GORM's
// CreateInBatches shape) are refused by the serving node as malformed.
func TestRegressionPipelinedBatchExceedsElementLimit(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	r.exec(t, "DROP TABLE IF EXISTS rv_many; CREATE TABLE rv_many (v int)")
	const perStmt = 30000
	var q strings.Builder
	q.WriteString("INSERT INTO rv_many (v) VALUES ")
	args := make([]any, perStmt)
	for i := range perStmt {
		if i > 0 {
			q.WriteString(",")
		}
		fmt.Fprintf(&q, "($%d)", i+1)
		args[i] = i
	}
	tx, err := r.laxDB.BeginTx(flypg.Pipeline(ctx), nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	for range 3 {
		_, err := tx.ExecContext(ctx, q.String(), args...)
		require.NoError(t, err)
	}
	assert.NoError(t, tx.Commit())
	var n int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM rv_many").Scan(&n))
	assert.Equal(t, 3*perStmt, n)
}

// The role check shares the bounded serving pool with forwarded work and
// gives up after 2 s: while remote transactions hold every serving
// connection (back-pressure, not a failure), the check times out, the
// primary-region node marks its own primary "unreachable", stops
// advertising it, and then forwards its own app's writes — to nobody.
func TestRegressionSaturatedServePoolDemotesPrimary(t *testing.T) {
	c := cluster(t)
	syd := startNode(t, "syd", c.Primary.DSN(), nil, func(cfg *flypg.Config) {
		cfg.MaxServeConns = 1
		cfg.RoleCheckInterval = 200 * time.Millisecond
		cfg.RPCTimeout = time.Second
	})
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	require.NoError(t, c.Primary.Exec(ctx, "DROP TABLE IF EXISTS rv_sat; CREATE TABLE rv_sat (id int)"))
	laxDB, sydDB := lax.OpenDB(), syd.OpenDB()
	defer laxDB.Close()
	defer sydDB.Close()
	_, err := sydDB.ExecContext(ctx, "INSERT INTO rv_sat VALUES (0)")
	require.NoError(t, err)

	tx, err := laxDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, "INSERT INTO rv_sat VALUES (1)") // holds syd's one serving connection
	require.NoError(t, err)

	var failed error
	assert.Never(t, func() bool { return syd.Stats().Databases[0].Role != "primary" }, 4*time.Second, 50*time.Millisecond,
		"the primary-region node lost its own primary while its serving pool was busy")
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, failed = sydDB.ExecContext(wctx, "INSERT INTO rv_sat VALUES (2)")
	assert.NoError(t, failed, "the primary-region app's own write on its own primary")
}

// A remote transaction's ROLLBACK (and COMMIT) is declined whenever the
// serving node's copy is not currently "writable" — here because the role
// check timed out on the busy serving pool — so the transaction is not
// rolled back: it keeps its primary connection and locks until the idle
// timeout, which keeps the pool saturated and the role check failing.
func TestRegressionRollbackDeclinedWhileNotWritable(t *testing.T) {
	c := cluster(t)
	syd := startNode(t, "syd", c.Primary.DSN(), nil, func(cfg *flypg.Config) { cfg.RoleCheckInterval = time.Hour })
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	laxDB := lax.OpenDB()
	defer laxDB.Close()
	tx, err := laxDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "SELECT 1")
	require.NoError(t, err)
	require.Equal(t, 1, syd.Stats().RemoteTx)
	flypg.MarkNotPrimary(syd) // as a demotion would look to syd

	_ = tx.Rollback()
	assert.Eventually(t, func() bool { return syd.Stats().RemoteTx == 0 }, 3*time.Second, 20*time.Millisecond,
		"the rollback reached syd and ended the transaction")
}

// Back-pressure that runs out: a forwarded autocommit write waits for a
// serving connection until shortly before the caller's deadline, then
// the serving node returns a plain error from its handler. The caller gets
// an untyped *transport.RemoteError text — neither ErrNoPrimary (nothing
// ran, safe to retry) nor a context error — so it cannot tell what
// happened to its write.
func TestRegressionServePoolWaitTimeoutIsUntyped(t *testing.T) {
	c := cluster(t)
	syd := startNode(t, "syd", c.Primary.DSN(), nil, func(cfg *flypg.Config) { cfg.MaxServeConns = 1 })
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	require.NoError(t, c.Primary.Exec(ctx, "DROP TABLE IF EXISTS rv_bp; CREATE TABLE rv_bp (id int)"))
	require.NoError(t, c.Sync(ctx))
	laxDB := lax.OpenDB()
	defer laxDB.Close()
	tx, err := laxDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, "SELECT 1") // holds syd's one serving connection
	require.NoError(t, err)

	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = laxDB.ExecContext(wctx, "INSERT INTO rv_bp VALUES (1)")
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.True(t, errors.Is(err, flypg.ErrNoPrimary) || errors.Is(err, context.DeadlineExceeded),
		"a write that waited for capacity and never ran reports a typed outcome")
}

type rvPartial struct{ ID int }

func init() {
	// Commits one row, then fails: the caller gets a PostgreSQL error.
	flypg.RegisterProc("review.partial", func(ctx context.Context, db *sql.DB, req rvPartial) (int, error) {
		if _, err := db.ExecContext(ctx, "INSERT INTO rv_part VALUES ($1)", req.ID); err != nil {
			return 0, err
		}
		_, err := db.ExecContext(ctx, "INSERT INTO rv_part VALUES ($1)", req.ID) // 23505
		return 0, err
	})
}

// A write that commits part of its work and then fails with a PostgreSQL
// error — a CALL of a procedure that COMMITs (PostgreSQL 11+), or a
// CallPrimary procedure that made several statements — is neither awaited
// nor reported as possibly committed: the error reads "not committed" (DESIGN
// "Outcomes"), and the committed rows are not visible on the local replica
// when it returns.
func TestRegressionPartialCommitBeforeErrorNotAwaited(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{ReplicaSettings: map[string]string{"recovery_min_apply_delay": "'700ms'"}})
	syd := startNode(t, "syd", c.Primary.DSN(), nil, nil)
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	require.NoError(t, c.Primary.Exec(ctx, `CREATE TABLE rv_part (id int PRIMARY KEY);
		CREATE PROCEDURE rv_commit_then_fail(i int) LANGUAGE plpgsql AS $$ BEGIN INSERT INTO rv_part VALUES (i); COMMIT; INSERT INTO rv_part VALUES (i); END $$`))
	require.NoError(t, c.Sync(ctx))
	db := lax.OpenDB()
	defer db.Close()
	visible := func(id int) bool {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM rv_part WHERE id = $1", id).Scan(&n))
		return n == 1
	}

	_, err := db.ExecContext(ctx, "CALL rv_commit_then_fail($1)", 1)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.True(t, visible(1), "CALL: the row its COMMIT made is not visible locally after the call returned")

	_, err = flypg.CallPrimary[rvPartial, int](ctx, lax, "review.partial", rvPartial{ID: 2})
	require.ErrorAs(t, err, &pgErr)
	assert.True(t, visible(2), "CallPrimary: the row the procedure committed is not visible locally after it returned")
}

// A node that has not reached its local copy yet (down at boot) names its
// database by name alone (SysID 0), and catalog.Serve / primaryNodes accept
// a name-only match: its writes run on whatever database of that name some
// node serves as primary — here another PostgreSQL cluster's — instead of
// failing. DESIGN: the serving node runs a request only on the database it
// names, "checked by system identifier and name".
func TestRegressionUnknownIdentityWritesToAnotherCluster(t *testing.T) {
	a := pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	b := pgcluster.ForTest(t, pgcluster.Options{Replicas: -1})
	ctx := testCtx(t)
	require.NoError(t, a.Replicas[0].Stop()) // lax's replica of cluster a is down
	sydB := startNode(t, "syd", b.Primary.DSN(), nil, nil)
	lax := startNode(t, "lax", a.Replicas[0].DSN(), []string{sydB.GossipAddr()}, func(c *flypg.Config) { c.AwaitTimeout = 200 * time.Millisecond })
	db := lax.OpenDB()
	defer db.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := db.ExecContext(wctx, "CREATE TABLE rv_wrongdb (id int)")
	t.Logf("lax's write: %v", err)
	var reg sql.NullString
	pb, perr := sql.Open("pgx", b.Primary.DSN())
	require.NoError(t, perr)
	defer pb.Close()
	require.NoError(t, pb.QueryRowContext(ctx, "SELECT to_regclass('rv_wrongdb')::text").Scan(&reg))
	assert.False(t, reg.Valid, "a write for cluster a's database ran on cluster b's primary")
}

// From the review of the code against the docs (end of this round): each
// failed before its fix.

// A read-only transaction sent to the primary (OnPrimary) whose first
// statement writes is refused by PostgreSQL itself (25006, the
// transaction is READ ONLY). The serving node took that for "no longer the
// primary", declined, and asked for a role check: the caller tried every
// node and got ErrNoPrimary instead of PostgreSQL's error.
func TestRegressionReadOnlyPrimaryTxFirstWriteIsPostgresError(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS rv_rotx; CREATE TABLE rv_rotx (id int)")
	ctx := testCtx(t)
	tx, err := r.laxDB.BeginTx(flypg.OnPrimary(ctx), &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO rv_rotx VALUES (1)")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "%v", err)
	assert.Equal(t, "25006", pgErr.Code)
	assert.NotErrorIs(t, err, flypg.ErrNoPrimary)
	_ = tx.Rollback()
	// The primary is still the primary: the next write goes straight there.
	_, err = r.laxDB.ExecContext(ctx, "INSERT INTO rv_rotx VALUES (2)")
	require.NoError(t, err)
}

// A CALL that commits part of its work, leaves session state behind (here
// a session advisory lock) and then fails: the serving node retires the
// connection for its state — and dropped the commit position it had read,
// so the caller did not await what the procedure committed.
func TestRegressionFailedStatefulCallNotAwaited(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{ReplicaSettings: map[string]string{"recovery_min_apply_delay": "'700ms'"}})
	syd := startNode(t, "syd", c.Primary.DSN(), nil, nil)
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	require.NoError(t, c.Primary.Exec(ctx, `CREATE TABLE rv_spart (id int PRIMARY KEY);
		CREATE PROCEDURE rv_commit_hold_fail(i int) LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO rv_spart VALUES (i); COMMIT; PERFORM pg_advisory_lock(4799); RAISE EXCEPTION 'after commit'; END $$`))
	require.NoError(t, c.Sync(ctx))
	db := lax.OpenDB()
	defer db.Close()

	_, err := db.ExecContext(ctx, "CALL rv_commit_hold_fail($1)", 1)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "after commit", pgErr.Message)
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM rv_spart WHERE id = 1").Scan(&n))
	assert.Equal(t, 1, n, "the row the CALL committed is visible locally when it returns")
	require.Eventually(t, func() bool {
		held, err := c.Primary.QueryString(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4799")
		return err == nil && held == "0"
	}, 10*time.Second, 10*time.Millisecond, "the lock went with the retired connection")
}

// In a read-only transaction on the local replica every session-bound
// statement was refused as an "advisory lock", with the advisory-lock
// alternative, and the error said "in autocommit".
func TestRegressionReadOnlyTxRefusalNamesWhatItRefused(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP SEQUENCE IF EXISTS rv_seq; CREATE SEQUENCE rv_seq")
	ctx := testCtx(t)
	for _, tc := range []struct{ stmt, what string }{
		{"SELECT currval('rv_seq')", router.BoundSequenceState.String()},
		{"CREATE TEMP TABLE rv_tmp (id int)", router.BoundTempObject.String()},
		{"SELECT pg_advisory_lock(4715)", router.BoundAdvisoryLock.String()},
	} {
		tx, err := r.laxDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, tc.stmt)
		var se *flypg.SessionStateError
		if assert.ErrorAs(t, err, &se, tc.stmt) {
			assert.Equal(t, tc.what, se.What, tc.stmt)
			assert.True(t, se.ReadOnlyTx, tc.stmt)
			assert.NotContains(t, se.Error(), "autocommit", tc.stmt)
			if tc.what != router.BoundAdvisoryLock.String() {
				assert.NotContains(t, se.Error(), "advisory", tc.stmt)
			}
		}
		require.NoError(t, tx.Rollback())
	}
}

// A remote transaction whose primary connection is lost is ErrTxGone —
// and the serving node's account of why reached the caller only as the
// bare sentinel.
func TestRegressionTxGoneKeepsItsReason(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS rv_gone; CREATE TABLE rv_gone (id int)")
	ctx := testCtx(t)
	tx, err := r.laxDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, "INSERT INTO rv_gone VALUES (1)")
	require.NoError(t, err)
	var killed int
	require.NoError(t, r.primary.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE state = 'idle in transaction' AND query = 'INSERT INTO rv_gone VALUES (1)'`).Scan(&killed))
	require.Equal(t, 1, killed)
	// The statement that meets the terminated session gets PostgreSQL's
	// own error, as pgx would give it; the next learns the transaction is
	// gone, and why.
	_, err = tx.ExecContext(ctx, "INSERT INTO rv_gone VALUES (2)")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "57P01", pgErr.Code)
	_, err = tx.ExecContext(ctx, "INSERT INTO rv_gone VALUES (3)")
	require.ErrorIs(t, err, flypg.ErrTxGone)
	assert.Contains(t, err.Error(), "lost mid-transaction")
}

// A procedure's request arrives from another node: a 10-byte body whose
// array claims 2^28 elements made msgpack allocate 2 GiB (2^32-1 killed the
// process) before the procedure ran. It is refused as malformed, before
// allocating, and the procedure does not run.
func TestRegressionProcRequestIsNoBomb(t *testing.T) {
	type idsReq struct{ IDs []int64 }
	ran := false
	flypg.RegisterProc("test.review-r3-ids", func(ctx context.Context, db *sql.DB, req idsReq) (int, error) {
		ran = true
		return len(req.IDs), nil
	})
	body := []byte{0x81, 0xa3, 'I', 'D', 's', 0xdd, 0x10, 0x00, 0x00, 0x00}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := flypg.ServeProc(context.Background(), "test.review-r3-ids", body)
	runtime.ReadMemStats(&after)
	require.Error(t, err)
	assert.ErrorIs(t, err, wire.ErrMalformed)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "decoding allocated before checking the declared length")
	assert.False(t, ran)
}

// A remote transaction whose first statement fails to parse on the primary
// is aborted, as with pgx: before, the statement failed in the describe,
// before BEGIN was sent, so the transaction did not exist yet — the next
// statement opened it and Commit committed a partial transaction.
func TestRegressionFirstStatementFailureAbortsTransaction(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS rv_first; CREATE TABLE rv_first (id int, tag text)")
	for _, tc := range []struct {
		name, first string
		pipeline    bool
	}{
		{"missing table", "INSERT INTO rv_no_such_table (x) VALUES ($1)", false},
		{"bad constant", "SELECT $1::int + 'abc'::int", false},
		{"missing table, pipelined", "INSERT INTO rv_no_such_table (x) VALUES ($1)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			bctx := ctx
			if tc.pipeline {
				bctx = flypg.Pipeline(ctx)
			}
			// What pgx does on the primary, for comparison.
			dtx, err := r.primary.BeginTx(ctx, nil)
			require.NoError(t, err)
			_, directFirst := dtx.ExecContext(ctx, tc.first, 1)
			_, directSecond := dtx.ExecContext(ctx, "INSERT INTO rv_first VALUES ($1, $2)", 1, tc.name+" direct")
			directCommit := dtx.Commit()
			var directPg, pgErr *pgconn.PgError
			require.ErrorAs(t, directFirst, &directPg) // a *pgconn.PrepareError around it, with pgx
			require.ErrorAs(t, directSecond, &pgErr)
			require.Equal(t, "25P02", pgErr.Code)
			require.ErrorIs(t, directCommit, pgx.ErrTxCommitRollback)

			tx, err := r.laxDB.BeginTx(bctx, nil)
			require.NoError(t, err)
			_, first := tx.ExecContext(bctx, tc.first, 1)
			var firstPg *pgconn.PgError
			require.ErrorAs(t, first, &firstPg)
			assert.Equal(t, directPg.Code, firstPg.Code)
			_, second := tx.ExecContext(bctx, "INSERT INTO rv_first VALUES ($1, $2)", 1, tc.name)
			commit := tx.Commit()
			if !tc.pipeline {
				require.ErrorAs(t, second, &pgErr, "the transaction is aborted")
				assert.Equal(t, "25P02", pgErr.Code)
				assert.ErrorIs(t, commit, pgx.ErrTxCommitRollback)
			} else {
				assert.Error(t, commit, "a pipelined transaction's Commit returns its first error")
			}
			var n int
			require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM rv_first WHERE tag = $1", tc.name).Scan(&n))
			assert.Zero(t, n, "nothing of the aborted transaction committed")
		})
	}
}

// More arguments than the extended protocol carries fail before anything
// is sent, with pgx's own error: before, 65,536 came back as an unknown
// outcome (the serving node's pgx refused them after the describe) and
// 100,000 as a malformed-message RemoteError.
func TestRegressionTooManyArgumentsAreNotSent(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS rv_args; CREATE TABLE rv_args (x int)")
	ctx := testCtx(t)
	for _, n := range []int{65536, 100000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var q strings.Builder
			q.WriteString("INSERT INTO rv_args VALUES ")
			args := make([]any, n)
			for i := range n {
				if i > 0 {
					q.WriteString(",")
				}
				fmt.Fprintf(&q, "($%d)", i+1)
				args[i] = i
			}
			_, direct := r.primary.ExecContext(ctx, q.String(), args...)
			require.Error(t, direct)
			_, err := r.laxDB.ExecContext(ctx, q.String(), args...)
			require.Error(t, err)
			assert.NotErrorIs(t, err, flypg.ErrUnknownOutcome)
			assert.Equal(t, direct.Error(), err.Error(), "pgx's own error")
		})
	}
	var count int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM rv_args").Scan(&count))
	assert.Zero(t, count)
}

// An empty statement with arguments is an error in either region (dev
// mode runs the same conn code): pgx's statement cache panics on it, and
// flypg passed the panic through.
func TestRegressionEmptyStatementWithArgumentsIsAnError(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	_, want := r.primary.ExecContext(ctx, "  ", 1) // what pgx says for a blank one
	require.Error(t, want)
	for name, db := range map[string]*sql.DB{"lax": r.laxDB, "syd": r.sydDB} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { _, err = db.ExecContext(ctx, "", 1) })
			require.Error(t, err)
			assert.Equal(t, want.Error(), err.Error())
			_, err = db.ExecContext(ctx, "")
			assert.NoError(t, err, "without arguments an empty statement is fine, as with pgx")
		})
	}
}

// A primary-region node whose own database refuses it (here a role that
// does not exist; a wrong password alike) answers writes with ErrNoPrimary:
// the error says why, not only the logs.
func TestRegressionNoPrimarySaysWhyTheOwnCopyIsDown(t *testing.T) {
	c := cluster(t)
	u, err := url.Parse(c.Primary.DSN())
	require.NoError(t, err)
	u.User = url.UserPassword("flypg_no_such_role", "hunter2-s3cret")
	syd := startNode(t, "syd", u.String(), nil, func(cfg *flypg.Config) { cfg.RPCTimeout = 500 * time.Millisecond })
	db := syd.OpenDB()
	defer db.Close()
	_, err = db.ExecContext(context.Background(), "CREATE TABLE rv_never (id int)")
	require.ErrorIs(t, err, flypg.ErrNoPrimary)
	assert.Contains(t, err.Error(), "this node's copy: unreachable")
	assert.Contains(t, err.Error(), "flypg_no_such_role", "PostgreSQL's reason")
	assert.NotContains(t, err.Error(), "hunter2-s3cret")
}

// A remote transaction whose first statement failed before the transaction
// could be opened (here: no primary reachable) cannot go on: before, the
// next statement opened a fresh transaction once a primary was back, and
// Commit committed it without the failed statement. With pgx the
// connection would be gone and every later statement fail.
func TestRegressionStatementFailedBeforeTheTransactionOpened(t *testing.T) {
	for _, pipelined := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipelined=%v", pipelined), func(t *testing.T) {
			c := cluster(t)
			quick := func(cfg *flypg.Config) { cfg.RPCTimeout = 300 * time.Millisecond }
			lax := startNode(t, "lax", c.Replicas[0].DSN(), nil, quick)
			db := lax.OpenDB()
			defer db.Close()
			ctx := testCtx(t)
			primary := pgxDB(t, c.Primary.DSN())
			_, err := primary.ExecContext(ctx, "DROP TABLE IF EXISTS rv_unopened; CREATE TABLE rv_unopened (id int)")
			require.NoError(t, err)
			require.NoError(t, c.Sync(ctx))

			bctx := ctx
			if pipelined {
				bctx = flypg.Pipeline(ctx)
			}
			tx, err := db.BeginTx(bctx, nil)
			require.NoError(t, err)
			short, cancelShort := context.WithTimeout(bctx, time.Second)
			if pipelined {
				// A query is sent at once (an Exec would be queued).
				_, err = tx.QueryContext(short, "INSERT INTO rv_unopened VALUES ($1) RETURNING id", 1)
			} else {
				_, err = tx.ExecContext(short, "INSERT INTO rv_unopened VALUES ($1)", 1)
			}
			cancelShort()
			require.ErrorIs(t, err, flypg.ErrNoPrimary, "no primary-region node yet")

			startNode(t, "syd", c.Primary.DSN(), []string{lax.GossipAddr()}, nil)
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			require.NoError(t, lax.WaitReady(wctx), "the primary is back")

			_, err = tx.ExecContext(bctx, "INSERT INTO rv_unopened VALUES ($1)", 2)
			if !pipelined {
				assert.ErrorIs(t, err, flypg.ErrTxGone, "the transaction cannot go on")
			}
			assert.Error(t, tx.Commit())
			var n int
			require.NoError(t, primary.QueryRowContext(ctx, "SELECT count(*) FROM rv_unopened").Scan(&n))
			assert.Zero(t, n, "nothing of the transaction committed")
		})
	}
}

// After Close a node opens nothing: Node.Open of a database it had opened
// returned it again, and its connections kept working.
func TestRegressionClosedNodeOpensNothing(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	url := r.c.Primary.DSN()
	db, err := r.lax.Open(url)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.PingContext(ctx))
	own := r.lax.OpenDB()
	defer own.Close()
	require.NoError(t, own.PingContext(ctx))

	require.NoError(t, r.lax.Close())
	_, err = r.lax.Open(url)
	assert.ErrorIs(t, err, flypg.ErrNodeClosed)
	fresh := r.lax.OpenDB()
	defer fresh.Close()
	assert.ErrorIs(t, fresh.PingContext(ctx), flypg.ErrNodeClosed, "a new pool")
	assert.ErrorIs(t, own.PingContext(ctx), flypg.ErrNodeClosed, "a pool that had a connection")
}
