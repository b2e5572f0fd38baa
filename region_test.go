package flypg_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/conformance"
	"github.com/flypg/flypg/internal/pgcluster"
)

var secret = []byte("ZdOzsFhTZYsAWIBc+Nbl9rapDVrqd/0rzxAdXygCHFk=") // openssl rand -base64 32

// regions starts a primary-region node "syd" on the primary and a
// replica-region node "lax" on the replica, joined into one cluster.
type regions struct {
	c        *pgcluster.Cluster
	syd, lax *flypg.Node
	sydDB    *sql.DB
	laxDB    *sql.DB
	primary  *sql.DB // plain pgx on the primary, for checks
	replica  *sql.DB // plain pgx on the replica, for checks
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startNode(t testing.TB, region, dsn string, join []string, mod func(*flypg.Config)) *flypg.Node {
	t.Helper()
	cfg := flypg.Config{
		Region:        region,
		PrimaryRegion: "syd",
		DSN:           dsn,
		NodeName:      fmt.Sprintf("%s-%s", region, t.Name()),
		GossipAddr:    "127.0.0.1:0",
		RPCAddr:       "127.0.0.1:0",
		Join:          join,
		Secret:        secret,
		GossipProfile: "local",
		AwaitTimeout:  5 * time.Second,
		Logger:        quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := flypg.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func startRegions(t testing.TB, laxMod func(*flypg.Config)) *regions {
	t.Helper()
	c := cluster(t)
	r := &regions{c: c}
	r.syd = startNode(t, "syd", c.Primary.DSN(), nil, nil)
	r.lax = startNode(t, "lax", c.Replicas[0].DSN(), []string{r.syd.GossipAddr()}, laxMod)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, r.lax.WaitReady(ctx), "lax finds syd")
	r.sydDB, r.laxDB = r.syd.OpenDB(), r.lax.OpenDB()
	var err error
	r.primary, err = sql.Open("pgx", c.Primary.DSN())
	require.NoError(t, err)
	r.replica, err = sql.Open("pgx", c.Replicas[0].DSN())
	require.NoError(t, err)
	t.Cleanup(func() {
		r.sydDB.Close()
		r.laxDB.Close()
		r.primary.Close()
		r.replica.Close()
	})
	return r
}

// pgxDB opens plain pgx on dsn, for checks, closed with the test.
func pgxDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func (r *regions) exec(t testing.TB, q string) {
	t.Helper()
	ctx := context.Background()
	_, err := r.primary.ExecContext(ctx, q)
	require.NoError(t, err)
	require.NoError(t, r.c.Sync(ctx))
}

type insertOne struct{ Title string }
type inserted struct{ IDs []int64 }

func init() {
	flypg.RegisterProc("test.insert", func(ctx context.Context, db *sql.DB, req insertOne) (inserted, error) {
		var id int64
		err := db.QueryRowContext(ctx, "INSERT INTO ryw (title) VALUES ($1) RETURNING id", req.Title).Scan(&id)
		return inserted{IDs: []int64{id}}, err
	})
	flypg.RegisterProc("test.insert10", func(ctx context.Context, db *sql.DB, req insertOne) (inserted, error) {
		var out inserted
		for i := range 10 {
			var id int64
			if err := db.QueryRowContext(ctx, "INSERT INTO ryw (title) VALUES ($1) RETURNING id", fmt.Sprint(req.Title, i)).Scan(&id); err != nil {
				return out, err
			}
			out.IDs = append(out.IDs, id)
		}
		return out, nil
	})
	flypg.RegisterProc("test.fail", func(ctx context.Context, db *sql.DB, req insertOne) (inserted, error) {
		if req.Title == "panic" {
			panic("boom")
		}
		_, err := db.ExecContext(ctx, "INSERT INTO ryw (id, title) VALUES (1, 'dup'), (1, 'dup')")
		return inserted{}, err
	})
	flypg.RegisterProc("test.region", func(ctx context.Context, db *sql.DB, _ struct{}) (bool, error) {
		var rec bool
		err := db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
		return rec, err
	})
}

func TestReadYourWrites(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS ryw; CREATE TABLE ryw (id bigserial PRIMARY KEY, title text NOT NULL)")
	ctx := testCtx(t)
	db := r.laxDB

	visible := func(id int64) bool {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM ryw WHERE id = $1", id).Scan(&n))
		return n == 1
	}
	const iterations = 1000
	for i := range iterations {
		title := fmt.Sprint("t", i)
		var ids []int64
		switch i % 4 {
		case 0: // autocommit Exec; the id comes back by title
			_, err := db.ExecContext(ctx, "INSERT INTO ryw (title) VALUES ($1)", title)
			require.NoError(t, err)
			var id int64
			require.NoError(t, db.QueryRowContext(ctx, "SELECT id FROM ryw WHERE title = $1", title).Scan(&id), "iteration %d: Exec's row not visible", i)
			ids = append(ids, id)
		case 1: // Query with RETURNING
			var id int64
			require.NoError(t, db.QueryRowContext(ctx, "INSERT INTO ryw (title) VALUES ($1) RETURNING id", title).Scan(&id))
			ids = append(ids, id)
		case 2: // read-write transaction of three statements
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			for j := range 3 {
				var id int64
				require.NoError(t, tx.QueryRowContext(ctx, "INSERT INTO ryw (title) VALUES ($1) RETURNING id", fmt.Sprint(title, "-", j)).Scan(&id))
				ids = append(ids, id)
			}
			require.NoError(t, tx.Commit())
		case 3: // CallPrimary
			out, err := flypg.CallPrimary[insertOne, inserted](ctx, r.lax, "test.insert", insertOne{Title: title})
			require.NoError(t, err)
			ids = out.IDs
		}
		for _, id := range ids {
			require.True(t, visible(id), "iteration %d (kind %d): row %d not visible on the replica right after the write", i, i%4, id)
		}
	}
	st := r.lax.Stats()
	assert.GreaterOrEqual(t, st.Awaits, int64(iterations), "every write awaited")
	assert.Zero(t, st.Retried)

	var rec bool
	require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.True(t, rec, "lax reads run on the replica")
}

func TestNoAwaitSkipsTheWait(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS ryw; CREATE TABLE ryw (id bigserial PRIMARY KEY, title text NOT NULL)")
	ctx := testCtx(t)
	before := r.lax.Stats()
	_, err := r.laxDB.ExecContext(flypg.NoAwait(ctx), "INSERT INTO ryw (title) VALUES ('fire and forget')")
	require.NoError(t, err)
	_, err = flypg.CallPrimary[insertOne, inserted](flypg.NoAwait(ctx), r.lax, "test.insert", insertOne{Title: "x"})
	require.NoError(t, err)
	after := r.lax.Stats()
	assert.Equal(t, before.Awaits, after.Awaits, "NoAwait writes do not wait")
	assert.Equal(t, before.Tracker.Waits, after.Tracker.Waits, "the tracker saw no wait")
	assert.Equal(t, before.Skipped+2, after.Skipped)

	_, err = r.laxDB.ExecContext(ctx, "INSERT INTO ryw (title) VALUES ('awaited')")
	require.NoError(t, err)
	assert.Equal(t, after.Awaits+1, r.lax.Stats().Awaits, "without NoAwait the write waits")
}

func TestRouting(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, `DROP TABLE IF EXISTS rt; CREATE TABLE rt (id int PRIMARY KEY, v text);
		CREATE OR REPLACE FUNCTION rt_touch(i int) RETURNS int LANGUAGE sql AS 'INSERT INTO rt VALUES (i, ''fn'') RETURNING id'`)
	ctx := testCtx(t)
	db := r.laxDB

	st0 := r.lax.Stats()
	for i := range 20 {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM rt WHERE id > $1", i).Scan(&n))
	}
	st1 := r.lax.Stats()
	assert.Equal(t, st0.Forwarded, st1.Forwarded, "reads are never forwarded")
	assert.Equal(t, st0.Local+20, st1.Local)

	_, err := db.ExecContext(ctx, "INSERT INTO rt VALUES (1, 'a')")
	require.NoError(t, err)
	st2 := r.lax.Stats()
	assert.Equal(t, st1.Forwarded+1, st2.Forwarded, "a write is forwarded once")
	assert.Equal(t, st1.Local, st2.Local, "a write never runs on the replica")

	// A read-looking statement with a side effect: the replica refuses it
	// with 25006 and it is retried once on the primary.
	var id int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT rt_touch(2)").Scan(&id))
	assert.Equal(t, 2, id)
	st3 := r.lax.Stats()
	assert.Equal(t, st2.Retried+1, st3.Retried)
	assert.Equal(t, st2.Forwarded+1, st3.Forwarded)
	var v string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT v FROM rt WHERE id = 2").Scan(&v), "the retried write was awaited")
	assert.Equal(t, "fn", v)

	// Read-only transactions stay local; read-write ones run on the primary.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	var rec bool
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.True(t, rec)
	require.NoError(t, tx.Commit())
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.False(t, rec, "a read-write transaction runs on the primary")
	require.NoError(t, tx.Rollback())

	// Prepared statements: reads local, writes forwarded.
	sel, err := db.PrepareContext(ctx, "SELECT pg_is_in_recovery()")
	require.NoError(t, err)
	require.NoError(t, sel.QueryRowContext(ctx).Scan(&rec))
	assert.True(t, rec)
	require.NoError(t, sel.Close())
	ins, err := db.PrepareContext(ctx, "INSERT INTO rt VALUES ($1, $2)")
	require.NoError(t, err)
	for i := 10; i < 13; i++ {
		res, err := ins.ExecContext(ctx, i, "prep")
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
	}
	require.NoError(t, ins.Close())
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM rt WHERE v = 'prep'").Scan(&n))
	assert.Equal(t, 3, n)

	// Refusals.
	_, err = db.ExecContext(ctx, "BEGIN")
	assert.ErrorContains(t, err, "BeginTx")
	_, err = db.ExecContext(ctx, "LISTEN chan")
	assert.ErrorContains(t, err, "LISTEN")
}

func TestForwardedFidelity(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS fid; CREATE TABLE fid (id serial PRIMARY KEY)")
	ctx := testCtx(t)
	for _, tc := range conformance.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			// A write that returns the case's values: forwarded from lax,
			// run directly on the primary for reference.
			q := "WITH w AS (INSERT INTO fid DEFAULT VALUES RETURNING id) SELECT " + tc.Expr + " FROM w"
			want, err := conformance.Query(ctx, r.primary, q, tc.Args...)
			require.NoError(t, err, "reference")
			before := r.lax.Stats().Forwarded
			have, err := conformance.Query(ctx, r.laxDB, q, tc.Args...)
			require.NoError(t, err, "forwarded")
			require.Equal(t, before+1, r.lax.Stats().Forwarded, "the statement was forwarded")
			assert.Equal(t, want.Columns, have.Columns)
			assert.Equal(t, want.Types, have.Types)
			assert.Equal(t, want.Describe(), have.Describe())
		})
	}
	_, err := r.laxDB.ExecContext(ctx, "INSERT INTO fid (id) VALUES ($1)", struct{ X int }{1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "struct { X int }", "an unshippable argument is named")
}

func TestForwardedErrors(t *testing.T) {
	r := startRegions(t, func(c *flypg.Config) { c.AwaitTimeout = 300 * time.Millisecond })
	r.exec(t, "DROP TABLE IF EXISTS ferr; CREATE TABLE ferr (id int CONSTRAINT ferr_pk PRIMARY KEY)")
	ctx := testCtx(t)
	db := r.laxDB
	_, err := db.ExecContext(ctx, "INSERT INTO ferr VALUES (1)")
	require.NoError(t, err)

	for _, q := range []string{"INSERT INTO ferr VALUES (1)", "INSERT INTO ferr VALUES ('x')", "INSERT INTO no_such VALUES (1)", "UPDATE ferr SET id = 1/0"} {
		t.Run(q, func(t *testing.T) {
			_, want := r.primary.ExecContext(ctx, q)
			_, got := db.ExecContext(ctx, q)
			require.Error(t, want)
			pgErr, ok := got.(*pgconn.PgError)
			require.True(t, ok, "forwarded error is *pgconn.PgError itself, got %T: %v", got, got)
			assert.NotEmpty(t, pgErr.Code)
			assert.Equal(t, conformance.ErrorFields(want), conformance.ErrorFields(got))
		})
	}
	_, err = db.ExecContext(ctx, "INSERT INTO ferr VALUES (1)")
	pgErr, ok := err.(*pgconn.PgError)
	require.True(t, ok)
	assert.Equal(t, "23505", pgErr.Code)
	assert.Equal(t, "ferr_pk", pgErr.ConstraintName)

	// Errors from procedures.
	_, err = flypg.CallPrimary[insertOne, inserted](ctx, r.lax, "test.fail", insertOne{})
	require.ErrorAs(t, err, &pgErr)
	_, err = flypg.CallPrimary[insertOne, inserted](ctx, r.lax, "test.fail", insertOne{Title: "panic"})
	var pe *flypg.ProcError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Message, "boom")
	_, err = flypg.CallPrimary[insertOne, inserted](ctx, r.lax, "no.such.proc", insertOne{})
	require.ErrorAs(t, err, &pe)
	rec, err := flypg.CallRegion[struct{}, bool](ctx, r.lax, "syd", "test.region", struct{}{})
	require.NoError(t, err, "the serving node survived the panic")
	assert.False(t, rec, "CallRegion syd ran on syd's database, the primary")

	// Replay paused: the write commits, the await times out.
	require.NoError(t, r.c.Replicas[0].PauseReplay(ctx))
	_, err = db.ExecContext(ctx, "INSERT INTO ferr VALUES (42)")
	require.NoError(t, r.c.Replicas[0].ResumeReplay(ctx))
	var ae *flypg.AwaitError
	require.ErrorAs(t, err, &ae)
	assert.ErrorIs(t, err, flypg.ErrAwaitTimeout)
	assert.NotZero(t, ae.LSN)
	var n int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM ferr WHERE id = 42").Scan(&n))
	assert.Equal(t, 1, n, "the write committed on the primary")
}

func TestForwardedCancel(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := r.laxDB.ExecContext(cctx, "DO $$ BEGIN PERFORM pg_sleep(10); END $$")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Eventually(t, func() bool {
		var n int
		err := r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'DO $$ BEGIN PERFORM pg_sleep%' AND state = 'active'").Scan(&n)
		return err == nil && n == 0
	}, time.Second, 5*time.Millisecond, "the statement was cancelled on the primary within 1 s")
}

func TestRemoteTransactions(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS rtx; CREATE TABLE rtx (id int PRIMARY KEY, v int)")
	ctx := testCtx(t)
	db := r.laxDB
	count := func() int {
		var n int
		require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM rtx").Scan(&n))
		return n
	}

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO rtx VALUES (1, 1), (2, 2)")
	require.NoError(t, err)
	var n int
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT count(*) FROM rtx").Scan(&n))
	assert.Equal(t, 2, n, "the transaction sees its own writes")
	require.NoError(t, tx.Rollback())
	assert.Equal(t, 0, count(), "rollback leaves nothing")
	assert.Zero(t, r.syd.Stats().RemoteTx)

	// Isolation level honoured: a serialization conflict surfaces as 40001.
	_, err = r.primary.ExecContext(ctx, "INSERT INTO rtx VALUES (1, 0), (2, 0)")
	require.NoError(t, err)
	require.NoError(t, r.c.Sync(ctx))
	t1, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	require.NoError(t, err)
	t2, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	require.NoError(t, err)
	var iso string
	require.NoError(t, t1.QueryRowContext(ctx, "SELECT current_setting('transaction_isolation')").Scan(&iso))
	assert.Equal(t, "serializable", iso)
	var s1, s2 int
	require.NoError(t, t1.QueryRowContext(ctx, "SELECT sum(v) FROM rtx").Scan(&s1))
	require.NoError(t, t2.QueryRowContext(ctx, "SELECT sum(v) FROM rtx").Scan(&s2))
	_, err = t1.ExecContext(ctx, "UPDATE rtx SET v = $1 WHERE id = 1", s1+1)
	require.NoError(t, err)
	_, err = t2.ExecContext(ctx, "UPDATE rtx SET v = $1 WHERE id = 2", s2+1)
	require.NoError(t, err)
	require.NoError(t, t1.Commit())
	err = t2.Commit()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "40001", pgErr.Code)

	// COMMIT after a failed statement: the same sentinel pgx returns.
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO rtx VALUES (1, 1)")
	require.ErrorAs(t, err, &pgErr)
	assert.ErrorIs(t, tx.Commit(), pgx.ErrTxCommitRollback)

	// A caller that vanishes mid-transaction: its transaction is rolled back
	// and the primary connection freed.
	lax2 := startNode(t, "lax", r.c.Replicas[0].DSN(), []string{r.syd.GossipAddr()}, func(c *flypg.Config) { c.NodeName = "lax-vanishing" })
	require.NoError(t, lax2.WaitReady(ctx))
	db2 := lax2.OpenDB()
	defer db2.Close()
	tx, err = db2.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO rtx VALUES (99, 99)")
	require.NoError(t, err)
	require.Equal(t, 1, r.syd.Stats().RemoteTx)
	idleInTx := func() int {
		var n int
		require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'").Scan(&n))
		return n
	}
	require.Equal(t, 1, idleInTx())
	require.NoError(t, lax2.Close())
	assert.Eventually(t, func() bool { return r.syd.Stats().RemoteTx == 0 && idleInTx() == 0 }, 10*time.Second, 10*time.Millisecond,
		"the vanished caller's transaction is rolled back and its connection freed")
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM rtx WHERE id = 99").Scan(&n))
	assert.Zero(t, n)
}

func TestCallPrimaryBatch(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS ryw; CREATE TABLE ryw (id bigserial PRIMARY KEY, title text NOT NULL)")
	ctx := testCtx(t)
	out, err := flypg.CallPrimary[insertOne, inserted](ctx, r.lax, "test.insert10", insertOne{Title: "b"})
	require.NoError(t, err)
	require.Len(t, out.IDs, 10)
	var n int
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT count(*) FROM ryw WHERE id = ANY($1)", out.IDs).Scan(&n))
	assert.Equal(t, 10, n, "all ten rows visible locally after CallPrimary")
}

func TestReplicaRegionWithWritableLocalDatabase(t *testing.T) {
	c := cluster(t)
	syd := startNode(t, "syd", c.Primary.DSN(), nil, nil)
	// "lax" is configured as a replica region, but its database is the
	// primary: writes run locally and never wait.
	lax := startNode(t, "lax", c.Primary.DSN(), []string{syd.GossipAddr()}, nil)
	db := lax.OpenDB()
	defer db.Close()
	ctx := testCtx(t)
	_, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS wl (id int)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO wl VALUES (1)")
	require.NoError(t, err)
	st := lax.Stats()
	assert.Zero(t, st.Forwarded)
	assert.Zero(t, st.Awaits)
}

func TestNoPrimary(t *testing.T) {
	c := cluster(t)
	lax := startNode(t, "lax", c.Replicas[0].DSN(), nil, func(cfg *flypg.Config) { cfg.RPCTimeout = 300 * time.Millisecond })
	db := lax.OpenDB()
	defer db.Close()
	for _, tc := range []struct {
		name     string
		deadline bool
	}{{"caller's deadline", true}, {"RPCTimeout", false}} {
		ctx := context.Background()
		if tc.deadline {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
		}
		name := tc.name
		_, err := db.ExecContext(ctx, "CREATE TABLE never (id int)")
		assert.ErrorIs(t, err, flypg.ErrNoPrimary, name)
		assert.False(t, errors.Is(err, flypg.ErrUnknownOutcome), name)
	}
}

func TestRemoteTransactionCancel(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS rtl; CREATE TABLE rtl (id int PRIMARY KEY)")
	ctx := testCtx(t)

	// BeginTx's context ends mid-transaction: database/sql rolls back, and
	// the rollback reaches the primary at once (not after the idle timeout).
	cctx, cancel := context.WithCancel(ctx)
	tx, err := r.laxDB.BeginTx(cctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(cctx, "INSERT INTO rtl VALUES (1)")
	require.NoError(t, err)
	require.Equal(t, 1, r.syd.Stats().RemoteTx)
	cancel()
	assert.Eventually(t, func() bool { return r.syd.Stats().RemoteTx == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestForwardedSessionStateDoesNotLeak(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS sess; CREATE TABLE sess (id int, tz text)")
	ctx := testCtx(t)
	_, err := r.laxDB.ExecContext(ctx, "SET TimeZone = 'Asia/Tokyo'; INSERT INTO sess VALUES (1, current_setting('TimeZone'))")
	require.NoError(t, err)
	for i := range 5 {
		_, err := r.laxDB.ExecContext(ctx, "INSERT INTO sess VALUES ($1, current_setting('TimeZone'))", i+2)
		require.NoError(t, err)
	}
	var tokyo int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM sess WHERE tz = 'Asia/Tokyo'").Scan(&tokyo))
	assert.Equal(t, 1, tokyo, "only the statement that set it saw the setting")
}

func TestPreparedStatementsRouteWhenRun(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS pr; CREATE TABLE pr (id int PRIMARY KEY)")
	ctx := testCtx(t)
	db := r.laxDB
	db.SetMaxOpenConns(1) // every statement and transaction shares one connection

	// A write prepared in autocommit, then used in a read-only (local)
	// transaction: the replica refuses it, as pgx would; nothing commits.
	ins, err := db.PrepareContext(ctx, "INSERT INTO pr VALUES ($1)")
	require.NoError(t, err)
	defer ins.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	_, err = tx.StmtContext(ctx, ins).ExecContext(ctx, 777)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "a write in a read-only transaction must fail")
	assert.Equal(t, "25006", pgErr.Code)
	require.NoError(t, tx.Rollback())
	var n int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pr").Scan(&n))
	assert.Zero(t, n)

	// A read prepared inside a remote transaction, used after it: local.
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	sel, err := tx.PrepareContext(ctx, "SELECT pg_is_in_recovery()")
	require.NoError(t, err)
	var rec bool
	require.NoError(t, sel.QueryRowContext(ctx).Scan(&rec))
	assert.False(t, rec, "inside the remote transaction: on the primary")
	require.NoError(t, tx.Commit())
	dbSel, err := db.PrepareContext(ctx, "SELECT pg_is_in_recovery()")
	require.NoError(t, err)
	defer dbSel.Close()
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, tx.StmtContext(ctx, dbSel).QueryRowContext(ctx).Scan(&rec))
	require.NoError(t, tx.Commit())
	before := r.lax.Stats().Forwarded
	require.NoError(t, dbSel.QueryRowContext(ctx).Scan(&rec))
	assert.True(t, rec, "after the transaction the read runs on the replica again")
	assert.Equal(t, before, r.lax.Stats().Forwarded)
}
