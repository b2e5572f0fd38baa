package flypg_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/conformance"
	"github.com/flypg/flypg/internal/pgcluster"
)

// The forwarding suite's essentials with lib/pq as the wrapped driver
// (Config.Driver "postgres"): what a node returns must be what lib/pq
// returns — its values, its column answers, its *pq.Error — and none of it
// may look like pgx's.

// pqRegions is a primary-region node and a replica-region node, both
// wrapping lib/pq, with plain lib/pq connections to the primary (the
// reference) and the replica.
type pqRegions struct {
	c        *pgcluster.Cluster
	syd, lax *flypg.Node
	laxDB    *sql.DB
	primary  *sql.DB // lib/pq on the primary: the reference
	replica  *sql.DB // lib/pq on the replica
}

func withPQ(mod func(*flypg.Config)) func(*flypg.Config) {
	return func(cfg *flypg.Config) {
		cfg.Driver = "postgres"
		if mod != nil {
			mod(cfg)
		}
	}
}

func startPQRegions(t testing.TB, c *pgcluster.Cluster, laxMod func(*flypg.Config)) *pqRegions {
	t.Helper()
	if c == nil {
		c = cluster(t)
	}
	r := &pqRegions{c: c}
	r.syd = startNode(t, "syd", c.Primary.DSN(), nil, withPQ(nil))
	r.lax = startNode(t, "lax", c.Replicas[0].DSN(), []string{r.syd.GossipAddr()}, withPQ(laxMod))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, r.lax.WaitReady(ctx), "lax finds syd")
	r.laxDB = r.lax.OpenDB()
	var err error
	r.primary, err = sql.Open("postgres", c.Primary.DSN())
	require.NoError(t, err)
	r.replica, err = sql.Open("postgres", c.Replicas[0].DSN())
	require.NoError(t, err)
	t.Cleanup(func() {
		r.laxDB.Close()
		r.primary.Close()
		r.replica.Close()
	})
	return r
}

func (r *pqRegions) exec(t testing.TB, q string) {
	t.Helper()
	ctx := context.Background()
	_, err := r.primary.ExecContext(ctx, q)
	require.NoError(t, err)
	require.NoError(t, r.c.Sync(ctx))
}

// pqErr asserts that err is *pq.Error itself, as code written for lib/pq
// type-asserts it.
func pqErr(t *testing.T, err error, what ...string) *pq.Error {
	t.Helper()
	pe, ok := err.(*pq.Error)
	require.True(t, ok, "%s: want *pq.Error itself, got %T: %v", strings.Join(what, " "), err, err)
	return pe
}

func TestPQReadYourWrites(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	r.exec(t, "DROP TABLE IF EXISTS ryw; CREATE TABLE ryw (id bigserial PRIMARY KEY, title text NOT NULL)")
	ctx := testCtx(t)
	db := r.laxDB
	visible := func(id int64) bool {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM ryw WHERE id = $1", id).Scan(&n))
		return n == 1
	}
	const iterations = 200
	for i := range iterations {
		title := fmt.Sprint("pq", i)
		var ids []int64
		switch i % 4 {
		case 0:
			_, err := db.ExecContext(ctx, "INSERT INTO ryw (title) VALUES ($1)", title)
			require.NoError(t, err)
			var id int64
			require.NoError(t, db.QueryRowContext(ctx, "SELECT id FROM ryw WHERE title = $1", title).Scan(&id), "iteration %d: Exec's row not visible", i)
			ids = append(ids, id)
		case 1:
			var id int64
			require.NoError(t, db.QueryRowContext(ctx, "INSERT INTO ryw (title) VALUES ($1) RETURNING id", title).Scan(&id))
			ids = append(ids, id)
		case 2:
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			for j := range 3 {
				var id int64
				require.NoError(t, tx.QueryRowContext(ctx, "INSERT INTO ryw (title) VALUES ($1) RETURNING id", fmt.Sprint(title, "-", j)).Scan(&id))
				ids = append(ids, id)
			}
			require.NoError(t, tx.Commit())
		case 3:
			// The procedure runs on syd's lib/pq pool.
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

func TestPQNoAwait(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	r.exec(t, "DROP TABLE IF EXISTS pqna; CREATE TABLE pqna (id serial PRIMARY KEY)")
	ctx := testCtx(t)
	before := r.lax.Stats()
	_, err := r.laxDB.ExecContext(flypg.NoAwait(ctx), "INSERT INTO pqna DEFAULT VALUES")
	require.NoError(t, err)
	after := r.lax.Stats()
	assert.Equal(t, before.Awaits, after.Awaits, "a NoAwait write does not wait")
	assert.Equal(t, before.Skipped+1, after.Skipped)
	assert.Equal(t, before.Forwarded+1, after.Forwarded)
	_, err = r.laxDB.ExecContext(ctx, "INSERT INTO pqna DEFAULT VALUES")
	require.NoError(t, err)
	assert.Equal(t, after.Awaits+1, r.lax.Stats().Awaits)
}

func TestPQRouting(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	r.exec(t, `DROP TABLE IF EXISTS pqrt; CREATE TABLE pqrt (id int PRIMARY KEY, v text);
		CREATE OR REPLACE FUNCTION pqrt_touch(i int) RETURNS int LANGUAGE sql AS 'INSERT INTO pqrt VALUES (i, ''fn'') RETURNING id'`)
	ctx := testCtx(t)
	db := r.laxDB

	st0 := r.lax.Stats()
	for i := range 10 {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM pqrt WHERE id > $1", i).Scan(&n))
	}
	st1 := r.lax.Stats()
	assert.Equal(t, st0.Forwarded, st1.Forwarded, "reads are never forwarded")
	assert.Equal(t, st0.Local+10, st1.Local)

	_, err := db.ExecContext(ctx, "INSERT INTO pqrt VALUES (1, 'a')")
	require.NoError(t, err)
	st2 := r.lax.Stats()
	assert.Equal(t, st1.Forwarded+1, st2.Forwarded, "a write is forwarded once")
	assert.Equal(t, st1.Local, st2.Local, "a write never runs on the replica")

	// The replica refuses it as lib/pq reports it — *pq.Error 25006 — and
	// it is retried once on the primary.
	var id int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT pqrt_touch(2)").Scan(&id))
	assert.Equal(t, 2, id)
	st3 := r.lax.Stats()
	assert.Equal(t, st2.Retried+1, st3.Retried)
	var v string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT v FROM pqrt WHERE id = 2").Scan(&v), "the retried write was awaited")
	assert.Equal(t, "fn", v)

	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	var rec bool
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.True(t, rec, "a read-only transaction is local")
	_, err = tx.ExecContext(ctx, "INSERT INTO pqrt VALUES (9, 'ro')")
	assert.Equal(t, "25006", string(pqErr(t, err).Code), "lib/pq's error from the replica")
	require.NoError(t, tx.Rollback())
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.False(t, rec, "a read-write transaction runs on the primary")
	require.NoError(t, tx.Rollback())

	sel, err := db.PrepareContext(ctx, "SELECT pg_is_in_recovery()")
	require.NoError(t, err)
	require.NoError(t, sel.QueryRowContext(ctx).Scan(&rec))
	assert.True(t, rec, "a prepared read runs on the replica")
	require.NoError(t, sel.Close())
	ins, err := db.PrepareContext(ctx, "INSERT INTO pqrt VALUES ($1, $2)")
	require.NoError(t, err)
	for i := 10; i < 13; i++ {
		res, err := ins.ExecContext(ctx, i, "prep")
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		_, err = res.LastInsertId()
		assert.Error(t, err, "as lib/pq: no LastInsertId")
	}
	require.NoError(t, ins.Close())
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM pqrt WHERE v = 'prep'").Scan(&n))
	assert.Equal(t, 3, n)

	_, err = db.ExecContext(ctx, "BEGIN")
	assert.ErrorContains(t, err, "BeginTx")
	_, err = db.ExecContext(ctx, "LISTEN chan")
	assert.ErrorContains(t, err, "LISTEN")

	sc, err := db.Conn(ctx)
	require.NoError(t, err)
	defer sc.Close()
	require.NoError(t, sc.Raw(func(dc any) error {
		inner := dc.(interface{ Unwrap() driver.Conn }).Unwrap()
		inner = inner.(interface{ Unwrap() driver.Conn }).Unwrap()
		assert.Equal(t, "*pq.conn", fmt.Sprintf("%T", inner), "lib/pq's own connection underneath")
		return nil
	}))
}

// The conformance cases, and the lib/pq-flavoured ones, forwarded from the
// replica region and run on the primary directly with lib/pq: the same
// columns, column answers, and Go values of the same types.
func TestPQForwardedConformance(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	r.exec(t, "DROP TABLE IF EXISTS pqfid; CREATE TABLE pqfid (id serial PRIMARY KEY)")
	ctx := testCtx(t)
	for _, tc := range append(conformance.Cases(), conformance.PQCases()...) {
		t.Run(tc.Name, func(t *testing.T) {
			q := "WITH w AS (INSERT INTO pqfid DEFAULT VALUES RETURNING id) SELECT " + tc.Expr + " FROM w"
			want, err := conformance.Query(ctx, r.primary, q, tc.Args...)
			require.NoError(t, err, "reference lib/pq")
			before := r.lax.Stats().Forwarded
			have, err := conformance.Query(ctx, r.laxDB, q, tc.Args...)
			require.NoError(t, err, "forwarded")
			require.Equal(t, before+1, r.lax.Stats().Forwarded, "the statement was forwarded")
			assert.Equal(t, want.Columns, have.Columns)
			assert.Equal(t, want.Types, have.Types)
			assert.Equal(t, want.Describe(), have.Describe())
			sameRows(t, want.Rows, have.Rows)
		})
	}

	// lib/pq's conventions, not pgx's: numeric and uuid come back as
	// []byte, an int4 column scans as int32 but arrives as int64.
	rows, err := r.laxDB.QueryContext(ctx, "WITH w AS (INSERT INTO pqfid DEFAULT VALUES RETURNING id) SELECT 1.5::numeric, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, id FROM w")
	require.NoError(t, err)
	res, err := conformance.Collect(rows)
	require.NoError(t, err)
	require.Len(t, res.Rows, 1)
	assert.Equal(t, []byte("1.5"), res.Rows[0][0])
	assert.Equal(t, []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), res.Rows[0][1])
	assert.IsType(t, int64(0), res.Rows[0][2])
	assert.Equal(t, "int32", res.Types[2].ScanType)
	assert.Equal(t, "interface {}", res.Types[0].ScanType)

	// A time in the session's named TimeZone arrives in that location.
	want := tzRows(ctx, t, r.primary)
	have := tzRows(ctx, t, r.laxDB)
	assert.Equal(t, want, have)
	require.Len(t, have, 1)
	assert.Equal(t, "America/New_York", have[0].Location().String())

	_, err = r.laxDB.ExecContext(ctx, "INSERT INTO pqfid (id) VALUES ($1)", struct{ X int }{1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "struct { X int }", "an argument lib/pq cannot take is refused, named")
}

// sameRows compares values deeply — a time's location included — with NaN
// equal to NaN.
func sameRows(t *testing.T, want, have [][]any) {
	t.Helper()
	require.Len(t, have, len(want))
	for i := range want {
		require.Len(t, have[i], len(want[i]))
		for j, w := range want[i] {
			if wf, ok := w.(float64); ok && math.IsNaN(wf) {
				hf, ok := have[i][j].(float64)
				assert.True(t, ok && math.IsNaN(hf), "row %d column %d: want NaN, have %#v", i, j, have[i][j])
				continue
			}
			assert.Equal(t, w, have[i][j], "row %d column %d", i, j)
		}
	}
}

func tzRows(ctx context.Context, t *testing.T, db *sql.DB) []time.Time {
	t.Helper()
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck // read only
	_, err = tx.ExecContext(ctx, "SET LOCAL TimeZone = 'America/New_York'")
	require.NoError(t, err)
	var out []time.Time
	rows, err := tx.QueryContext(ctx, "SELECT '2024-02-29 13:14:15.5+02'::timestamptz")
	require.NoError(t, err)
	for rows.Next() {
		var v time.Time
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

// Arguments as lib/pq users pass them are stored as lib/pq stores them.
func TestPQForwardedArgumentsStoreWhatLibPQStores(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	ctx := testCtx(t)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	when := time.Date(2024, 2, 29, 23, 14, 15, 123456000, ny)
	cases := []struct {
		name, typ string
		arg       any
	}{
		{"pq.Array", "int8[]", pq.Array([]int64{1, 2, 3})},
		{"Go slice", "text[]", []string{"a", "b c", `d"e`}},
		{"bytea from string", "bytea", "\\x41 raw"},
		{"bytea from bytes", "bytea", []byte{0, 1, 0xff}},
		{"time in a location, timestamptz", "timestamptz", when},
		{"time in a location, timestamp", "timestamp", when},
		{"local time, timestamp", "timestamp", when.Local()},
		{"uint64 past int64", "numeric", uint64(1<<63 + 1)},
		{"NullTime", "timestamp", pq.NullTime{Time: when, Valid: true}},
		{"nil", "text", nil},
		{"duration", "interval", 90 * time.Minute},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := fmt.Sprintf("pqarg%d", i)
			r.exec(t, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (k text PRIMARY KEY, v %s)", table, table, tc.typ))
			q := fmt.Sprintf("INSERT INTO %s VALUES ($1, $2)", table)
			_, errDirect := r.primary.ExecContext(ctx, q, "direct", tc.arg)
			_, errFwd := r.laxDB.ExecContext(ctx, q, "forwarded", tc.arg)
			if errDirect != nil {
				require.Error(t, errFwd, "lib/pq refuses it (%v); so must flypg", errDirect)
				if pe, ok := errDirect.(*pq.Error); ok {
					assert.Equal(t, pe, pqErr(t, errFwd))
				} else {
					assert.EqualError(t, errFwd, errDirect.Error())
				}
				return
			}
			require.NoError(t, errFwd)
			var a, b sql.NullString
			require.NoError(t, r.primary.QueryRowContext(ctx, fmt.Sprintf("SELECT (SELECT v::text FROM %s WHERE k = 'direct'), (SELECT v::text FROM %s WHERE k = 'forwarded')", table, table)).Scan(&a, &b))
			assert.Equal(t, a, b, "stored value")
		})
	}
}

// Errors — from the replica, forwarded, inside remote transactions, from
// procedures — are *pq.Error itself, deeply equal to what lib/pq returns
// for the same statement on the primary (every field, and the text its
// Error() prints).
func TestPQForwardedErrors(t *testing.T) {
	r := startPQRegions(t, nil, func(c *flypg.Config) { c.AwaitTimeout = 300 * time.Millisecond })
	r.exec(t, "DROP TABLE IF EXISTS pqferr; CREATE TABLE pqferr (id int CONSTRAINT pqferr_pk PRIMARY KEY, n int NOT NULL DEFAULT 0)")
	ctx := testCtx(t)
	db := r.laxDB
	_, err := db.ExecContext(ctx, "INSERT INTO pqferr VALUES (1)")
	require.NoError(t, err)

	for _, tc := range []struct {
		q    string
		args []any
	}{
		{"INSERT INTO pqferr VALUES (1)", nil},
		{"INSERT INTO pqferr VALUES ($1)", []any{1}},
		{"INSERT INTO pqferr VALUES ('x')", nil},
		{"INSERT INTO no_such VALUES (1)", nil},
		{"UPDATE pqferr SET id = 1/0", nil},
		{"INSERT INTO pqferr (id, n) VALUES\n  (2,\n   NULL)", nil},
		{"UPDATE pqferr SET nosuch = 1 WHERE id = $1", []any{1}},
	} {
		t.Run(tc.q, func(t *testing.T) {
			_, want := r.primary.ExecContext(ctx, tc.q, tc.args...)
			_, got := db.ExecContext(ctx, tc.q, tc.args...)
			w := pqErr(t, want, "reference")
			g := pqErr(t, got, "forwarded")
			assert.Equal(t, w, g)
			assert.Equal(t, w.Error(), g.Error())
			assert.Equal(t, w.ErrorWithDetail(), g.ErrorWithDetail())
		})
	}
	_, err = db.ExecContext(ctx, "INSERT INTO pqferr VALUES (1)")
	pe := pqErr(t, err)
	assert.Equal(t, "23505", string(pe.Code))
	assert.Equal(t, "pqferr_pk", pe.Constraint)
	assert.NotNil(t, pq.As(err, "23505"), "pq.As finds it")

	// lib/pq's own refusal, not PostgreSQL's: the same text.
	_, want := r.primary.ExecContext(ctx, "INSERT INTO pqferr VALUES ($1, $2)", 3)
	_, got := db.ExecContext(ctx, "INSERT INTO pqferr VALUES ($1, $2)", 3)
	require.Error(t, want)
	assert.EqualError(t, got, want.Error())

	// A read that fails on the replica: lib/pq's error, locally.
	_, want = r.primary.QueryContext(ctx, "SELECT 1/0 FROM pqferr")
	_, got = db.QueryContext(ctx, "SELECT 1/0 FROM pqferr")
	assert.Equal(t, pqErr(t, want), pqErr(t, got))

	// Inside a remote transaction, on Exec and on Query.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, got = tx.ExecContext(ctx, "INSERT INTO pqferr VALUES (1)")
	_, want = r.primary.ExecContext(ctx, "INSERT INTO pqferr VALUES (1)")
	assert.Equal(t, pqErr(t, want), pqErr(t, got))
	_, got = tx.QueryContext(ctx, "SELECT 1")
	assert.Equal(t, "25P02", string(pqErr(t, got).Code), "the transaction is aborted, as PostgreSQL says")
	assert.Same(t, pq.ErrInFailedTransaction, tx.Commit(), "COMMIT of a failed transaction: lib/pq's sentinel itself")

	// From a procedure run on syd's lib/pq pool.
	_, err = flypg.CallPrimary[insertOne, inserted](ctx, r.lax, "test.fail", insertOne{})
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "23505", string(pe.Code))

	// Replay paused: the write commits, the await times out, and the
	// RETURNING rows it carries are lib/pq's values.
	require.NoError(t, r.c.Replicas[0].PauseReplay(ctx))
	_, err = db.QueryContext(ctx, "INSERT INTO pqferr VALUES (42, 7) RETURNING id, n::numeric, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid")
	require.NoError(t, r.c.Replicas[0].ResumeReplay(ctx))
	var ae *flypg.AwaitError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, [][]any{{int64(42), []byte("7"), []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}}, ae.Rows)
	assert.EqualValues(t, 1, ae.RowsAffected)
}

func TestPQForwardedCancel(t *testing.T) {
	r := startPQRegions(t, nil, nil)
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
	}, 3*time.Second, 5*time.Millisecond, "the statement was cancelled on the primary")
}

func TestPQRemoteTransactions(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	r.exec(t, "DROP TABLE IF EXISTS pqtx; CREATE TABLE pqtx (id int PRIMARY KEY, v int)")
	ctx := testCtx(t)
	db := r.laxDB
	count := func() int {
		var n int
		require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pqtx").Scan(&n))
		return n
	}

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pqtx VALUES (1, 1), (2, 2)")
	require.NoError(t, err)
	var n int
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT count(*) FROM pqtx").Scan(&n))
	assert.Equal(t, 2, n, "the transaction sees its own writes")
	require.NoError(t, tx.Rollback())
	assert.Equal(t, 0, count(), "rollback leaves nothing")
	assert.Zero(t, r.syd.Stats().RemoteTx)

	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pqtx VALUES (1, 0), (2, 0)")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM pqtx").Scan(&n))
	assert.Equal(t, 2, n, "committed and awaited: visible on the replica at once")

	// Isolation levels as lib/pq's BeginTx sets them.
	for _, l := range []struct {
		level sql.IsolationLevel
		want  string
	}{{sql.LevelDefault, "read committed"}, {sql.LevelRepeatableRead, "repeatable read"}, {sql.LevelSerializable, "serializable"}} {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: l.level})
		require.NoError(t, err)
		var iso, ro string
		require.NoError(t, tx.QueryRowContext(ctx, "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')").Scan(&iso, &ro))
		assert.Equal(t, l.want, iso)
		assert.Equal(t, "off", ro)
		require.NoError(t, tx.Rollback())
	}
	_, want := r.primary.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSnapshot})
	_, got := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSnapshot})
	require.Error(t, want)
	assert.EqualError(t, got, want.Error(), "refused as lib/pq refuses it")

	// A serialization conflict surfaces at COMMIT as lib/pq's 40001.
	t1, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	require.NoError(t, err)
	t2, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	require.NoError(t, err)
	var s1, s2 int
	require.NoError(t, t1.QueryRowContext(ctx, "SELECT sum(v) FROM pqtx").Scan(&s1))
	require.NoError(t, t2.QueryRowContext(ctx, "SELECT sum(v) FROM pqtx").Scan(&s2))
	_, err = t1.ExecContext(ctx, "UPDATE pqtx SET v = $1 WHERE id = 1", s1+1)
	require.NoError(t, err)
	_, err = t2.ExecContext(ctx, "UPDATE pqtx SET v = $1 WHERE id = 2", s2+1)
	require.NoError(t, err)
	require.NoError(t, t1.Commit())
	assert.Equal(t, "40001", string(pqErr(t, t2.Commit()).Code))

	// COMMIT after a failed statement: lib/pq's sentinel, nothing kept.
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pqtx VALUES (3, 3)")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pqtx VALUES (1, 1)")
	pqErr(t, err)
	assert.Same(t, pq.ErrInFailedTransaction, tx.Commit())
	assert.Equal(t, 2, count())
	assert.Eventually(t, func() bool { return r.syd.Stats().RemoteTx == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestPQPipelinedTransaction(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	r.exec(t, "DROP TABLE IF EXISTS pqpl; CREATE TABLE pqpl (id int PRIMARY KEY, v text)")
	ctx := testCtx(t)
	trips := func() int64 { return r.lax.Stats().RoundTrips }

	before := trips()
	tx, err := r.laxDB.BeginTx(flypg.Pipeline(ctx), nil)
	require.NoError(t, err)
	var results []sql.Result
	for i := range 3 {
		res, err := tx.ExecContext(ctx, "INSERT INTO pqpl VALUES ($1, 'a')", i)
		require.NoError(t, err)
		results = append(results, res)
	}
	assert.Equal(t, before, trips(), "nothing sent yet")
	require.NoError(t, tx.Commit())
	assert.Equal(t, before+1, trips(), "BEGIN, three INSERTs and COMMIT in one round trip")
	for _, res := range results {
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
	}
	var n int
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT count(*) FROM pqpl").Scan(&n))
	assert.Equal(t, 3, n, "committed and awaited")

	// An argument's buffer reused once Exec has returned: what was queued
	// is what the caller passed then.
	tx, err = r.laxDB.BeginTx(flypg.Pipeline(ctx), nil)
	require.NoError(t, err)
	buf := []byte("first")
	_, err = tx.ExecContext(ctx, "INSERT INTO pqpl VALUES (5, $1)", buf)
	require.NoError(t, err)
	copy(buf, "AFTER")
	_, err = tx.ExecContext(ctx, "INSERT INTO pqpl VALUES (6, $1)", buf)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	var v5, v6 string
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT (SELECT v FROM pqpl WHERE id = 5), (SELECT v FROM pqpl WHERE id = 6)").Scan(&v5, &v6))
	assert.Equal(t, []string{"first", "AFTER"}, []string{v5, v6})

	tx, err = r.laxDB.BeginTx(flypg.Pipeline(ctx), nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pqpl VALUES (10, 'b')")
	require.NoError(t, err)
	dup, err := tx.ExecContext(ctx, "INSERT INTO pqpl VALUES (1, 'b')")
	require.NoError(t, err, "queued")
	err = tx.Commit()
	assert.Equal(t, "23505", string(pqErr(t, err, "Commit returns the first error").Code))
	_, err = dup.RowsAffected()
	assert.Equal(t, "23505", string(pqErr(t, err).Code))
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pqpl").Scan(&n))
	assert.Equal(t, 5, n, "nothing of it committed")
}

// Arguments and results far larger than one message cross in pieces.
func TestPQLargeRequestsAndResults(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	r.exec(t, "DROP TABLE IF EXISTS pqblobs; CREATE TABLE pqblobs (id int PRIMARY KEY, b bytea, t text)")
	ctx := testCtx(t)
	blob := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16)
	blob[12345] = 0xff
	_, err := r.laxDB.ExecContext(ctx, "INSERT INTO pqblobs VALUES (1, $1, 'x')", blob)
	require.NoError(t, err, "a 6 MiB argument")
	var got []byte
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT b FROM pqblobs WHERE id = 1").Scan(&got))
	assert.True(t, bytes.Equal(blob, got), "stored exactly, and visible at once")
	var back []byte
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "UPDATE pqblobs SET t = 'y' WHERE id = 1 RETURNING b").Scan(&back))
	assert.True(t, bytes.Equal(blob, back), "a 6 MiB RETURNING")

	_, err = r.laxDB.ExecContext(ctx, "INSERT INTO pqblobs SELECT g, NULL, repeat(md5(g::text), 32) FROM generate_series(2, 40001) g")
	require.NoError(t, err)
	rows, err := r.laxDB.QueryContext(flypg.OnPrimary(ctx), "SELECT id, t FROM pqblobs WHERE id > 1 ORDER BY id")
	require.NoError(t, err)
	n, want := 0, 2
	for rows.Next() {
		var id int
		var s string
		require.NoError(t, rows.Scan(&id, &s))
		require.Equal(t, want, id)
		require.Len(t, s, 1024)
		want++
		n++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	assert.Equal(t, 40000, n, "a 40 MiB read from the primary, streamed")

	rows, err = r.laxDB.QueryContext(ctx, "UPDATE pqblobs SET t = t || 'z' WHERE id > 1 RETURNING id, t")
	require.NoError(t, err)
	n = 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	assert.Equal(t, 40000, n)
	var z int
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT count(*) FROM pqblobs WHERE t LIKE '%z'").Scan(&z))
	assert.Equal(t, 40000, z, "awaited: the replica shows the update")
}

// The primary restarts: the serving node's pooled lib/pq connections are
// dead. lib/pq would only notice after sending the next write on one — an
// unknown outcome; flypg checks a connection idle for a second before
// using it (as pgx does), so every write after the restart just works.
func TestPQPrimaryRestartLeavesNoUnknownOutcome(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	r := startPQRegions(t, c, nil)
	r.exec(t, "CREATE TABLE pqrs (id int PRIMARY KEY)")
	ctx := testCtx(t)

	// Fill syd's pool with idle connections: transactions held at once.
	const conns = 6
	var txs []*sql.Tx
	for i := range conns {
		tx, err := r.laxDB.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "INSERT INTO pqrs VALUES ($1)", i)
		require.NoError(t, err)
		txs = append(txs, tx)
	}
	for _, tx := range txs {
		require.NoError(t, tx.Commit())
	}
	idleFrom := time.Now()

	require.NoError(t, c.Primary.Restart(ctx))
	require.NoError(t, c.Replicas[0].WaitStreaming(ctx))
	require.NoError(t, r.lax.WaitReady(ctx))
	// The check is for connections idle longer than pgx's second.
	time.Sleep(time.Until(idleFrom.Add(1100 * time.Millisecond)))

	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.laxDB.ExecContext(ctx, "INSERT INTO pqrs VALUES ($1)", 100+i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "write %d after the restart", i)
		assert.False(t, errors.Is(err, flypg.ErrUnknownOutcome), "write %d", i)
	}
	var n int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pqrs WHERE id >= 100").Scan(&n))
	assert.Equal(t, conns, n)
}

// With no PRIMARY_REGION a lib/pq node is a pure pass-through: the same
// values, column answers and errors as lib/pq on the same database, and
// FLYPG_DRIVER=postgres selects it.
func TestPQDevModePassThrough(t *testing.T) {
	c := cluster(t)
	t.Setenv("PRIMARY_REGION", "")
	t.Setenv("FLYPG_DRIVER", "postgres")
	t.Setenv("FLYPG_DSN", c.Primary.DSN())
	cfg, err := flypg.ConfigFromEnv()
	require.NoError(t, err)
	require.Equal(t, "postgres", cfg.Driver)
	cfg.Logger = quietLogger()
	ctx := testCtx(t)
	n, err := flypg.Start(ctx, cfg)
	require.NoError(t, err)
	defer n.Close()
	got := n.OpenDB()
	defer got.Close()
	ref, err := sql.Open("postgres", c.Primary.DSN())
	require.NoError(t, err)
	defer ref.Close()

	for _, tc := range append(conformance.Cases(), conformance.PQCases()...) {
		t.Run(tc.Name, func(t *testing.T) {
			q := "SELECT " + tc.Expr
			want, err := conformance.Query(ctx, ref, q, tc.Args...)
			require.NoError(t, err, "reference lib/pq")
			have, err := conformance.Query(ctx, got, q, tc.Args...)
			require.NoError(t, err, "flypg")
			assert.Equal(t, want.Columns, have.Columns)
			assert.Equal(t, want.Types, have.Types)
			sameRows(t, want.Rows, have.Rows)
		})
	}
	for _, q := range []string{"SELEC 1", "SELECT 1/0", "SELECT * FROM no_such_table"} {
		_, want := ref.ExecContext(ctx, q)
		_, have := got.ExecContext(ctx, q)
		assert.Equal(t, pqErr(t, want), pqErr(t, have), q)
	}
	tx, err := got.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "SELECT 1/0")
	pqErr(t, err)
	assert.Same(t, pq.ErrInFailedTransaction, tx.Commit())
	assert.Zero(t, n.Stats().Forwarded)
}

// The local replica stops: connections made meanwhile have no local lib/pq
// connection to convert arguments, so flypg applies lib/pq's
// CheckNamedValue itself; reads go to the primary and return what lib/pq
// returns there.
func TestPQLocalReplicaDown(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	fast := func(cfg *flypg.Config) { cfg.RoleCheckInterval = 200 * time.Millisecond }
	r := startPQRegions(t, c, fast)
	ctx := testCtx(t)
	db := r.laxDB
	var rec bool
	require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	require.True(t, rec)

	require.NoError(t, c.Replicas[0].Stop())
	eventually(t, 10*time.Second, func() error {
		if err := db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			return err
		}
		if rec {
			return errors.New("still on the replica")
		}
		return nil
	})
	before := r.lax.Stats().PrimaryReads
	for _, tc := range append(conformance.Cases(), conformance.PQCases()...) {
		t.Run(tc.Name, func(t *testing.T) {
			q := "SELECT " + tc.Expr
			want, err := conformance.Query(ctx, r.primary, q, tc.Args...)
			require.NoError(t, err, "reference lib/pq")
			have, err := conformance.Query(ctx, db, q, tc.Args...)
			require.NoError(t, err, "flypg, detached")
			assert.Equal(t, want.Columns, have.Columns)
			assert.Equal(t, want.Types, have.Types)
			sameRows(t, want.Rows, have.Rows)
		})
	}
	assert.Greater(t, r.lax.Stats().PrimaryReads, before, "the reads ran on the primary")
	_, err := db.ExecContext(ctx, "SELECT $1::text", struct{ X int }{1})
	assert.ErrorContains(t, err, "struct { X int }", "what lib/pq cannot take is refused, named")
}

// A RETURNING larger than the caller's buffer (4 MiB) is streamed, as with
// pgx: QueryContext hands the rows over before the write has been awaited,
// and the await (here, its timeout: replay is paused) ends the rows.
// Memory stays bounded by the buffer, not by the result.
func TestPQHugeReturningIsStreamed(t *testing.T) {
	r := startPQRegions(t, nil, func(c *flypg.Config) { c.AwaitTimeout = 500 * time.Millisecond })
	r.exec(t, "DROP TABLE IF EXISTS pqhuge; CREATE TABLE pqhuge (id int PRIMARY KEY, t text)")
	ctx := testCtx(t)
	_, err := r.primary.ExecContext(ctx, "INSERT INTO pqhuge SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 20000) g")
	require.NoError(t, err)
	require.NoError(t, r.c.Sync(ctx))

	require.NoError(t, r.c.Replicas[0].PauseReplay(ctx))
	defer func() { require.NoError(t, r.c.Replicas[0].ResumeReplay(ctx)) }()
	rows, err := r.laxDB.QueryContext(ctx, "UPDATE pqhuge SET t = t || 'z' RETURNING id, t")
	require.NoError(t, err, "20 MiB of rows: streamed, not held until the await ends")
	n := 0
	for rows.Next() {
		n++
	}
	var ae *flypg.AwaitError
	require.ErrorAs(t, rows.Err(), &ae, "the await ends the rows")
	assert.Equal(t, 20000, n)
	rows.Close()
}

// What a forwarded statement leaves on its lib/pq session on the primary —
// a setting, a session advisory lock — never reaches the next caller, and a
// lost lock is reported (the serving node reads the session's state through
// lib/pq, in the same round trip as the commit position).
func TestPQForwardedSessionStateDoesNotLeak(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	r.exec(t, `DROP TABLE IF EXISTS pqsess; CREATE TABLE pqsess (id int, tz text);
		CREATE OR REPLACE FUNCTION pq_lock_and_write() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_lock(4714); INSERT INTO pqsess VALUES (0, 'lock'); RETURN 1; END $$`)
	ctx := testCtx(t)
	_, err := r.laxDB.ExecContext(ctx, "SET TimeZone = 'Asia/Tokyo'; INSERT INTO pqsess VALUES (1, current_setting('TimeZone'))")
	require.NoError(t, err)
	for i := range 5 {
		_, err := r.laxDB.ExecContext(ctx, "INSERT INTO pqsess VALUES ($1, current_setting('TimeZone'))", i+2)
		require.NoError(t, err)
	}
	var tokyo int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pqsess WHERE tz = 'Asia/Tokyo'").Scan(&tokyo))
	assert.Equal(t, 1, tokyo, "only the statement that set it saw the setting")

	_, err = r.laxDB.ExecContext(ctx, "SELECT pq_lock_and_write()")
	var se *flypg.SessionStateError
	require.ErrorAs(t, err, &se)
	assert.True(t, se.Committed)
	// The connection that held it was closed, not pooled; its server
	// process releases the lock as it exits.
	assert.Eventually(t, func() bool {
		var n int
		return r.primary.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4714").Scan(&n) == nil && n == 0
	}, 5*time.Second, 5*time.Millisecond, "the lock is not left on a pooled connection")
}

// An app written for lib/pq keeps its error handling: with Driver
// "postgres" (or FLYPG_DRIVER=postgres) flypg wraps lib/pq, and a write
// forwarded from a replica region fails with lib/pq's own *pq.Error.
func ExampleConfig_libpq() {
	cfg, err := flypg.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	cfg.Driver = "postgres"
	ctx := context.Background()
	node, err := flypg.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	db := node.OpenDB()
	defer db.Close()
	_, err = db.ExecContext(ctx, "INSERT INTO users (email) VALUES ($1)", "a@example.com")
	if pqErr, ok := err.(*pq.Error); ok && pqErr.Code == pqerror.UniqueViolation {
		log.Printf("%s is taken", "a@example.com")
	}
}

// BenchmarkPQForwarded measures, with lib/pq wrapped, an autocommit INSERT
// forwarded from the replica region on loopback (forward + await) and a
// 1,000-row read from the primary through the link (OnPrimary), each
// against the same statement run directly on the primary with lib/pq.
func BenchmarkPQForwarded(b *testing.B) {
	r := startPQRegions(b, nil, nil)
	r.exec(b, `DROP TABLE IF EXISTS bench_pq; CREATE TABLE bench_pq (id bigserial PRIMARY KEY, v text, n int8, t timestamptz, bb bytea);
		DROP TABLE IF EXISTS bench_pq_res; CREATE TABLE bench_pq_res AS SELECT g AS id, md5(g::text) || md5(g::text) || md5(g::text) AS v, now() AS t FROM generate_series(1, 1000) g`)
	args := []any{"title", int64(42), time.Now(), []byte("blob")}
	for _, tc := range []struct {
		name string
		db   *sql.DB
		ctx  context.Context
	}{{"insert/libpq-primary", r.primary, context.Background()}, {"insert/flypg-forwarded", r.laxDB, context.Background()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.db.ExecContext(tc.ctx, "INSERT INTO bench_pq (v, n, t, bb) VALUES ($1, $2, $3, $4)", args...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, tc := range []struct {
		name string
		db   *sql.DB
		ctx  context.Context
	}{{"result/libpq-primary", r.primary, context.Background()}, {"result/flypg-onprimary", r.laxDB, flypg.OnPrimary(context.Background())}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rows, err := tc.db.QueryContext(tc.ctx, "SELECT id, v, t FROM bench_pq_res")
				if err != nil {
					b.Fatal(err)
				}
				var (
					id int64
					v  string
					t  time.Time
				)
				for rows.Next() {
					if err := rows.Scan(&id, &v, &t); err != nil {
						b.Fatal(err)
					}
				}
				if err := rows.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// lib/pq's own connection options (binary_parameters,
// disable_prepared_binary_result) in the DSN are lib/pq's business: the
// node must still track its replica's replay — its LSN tracker must not
// hand them to PostgreSQL as settings, which refuses to start the session.
func TestPQLibPQConnectionOptions(t *testing.T) {
	c := cluster(t)
	const opts = "&binary_parameters=yes&disable_prepared_binary_result=yes"
	syd := startNode(t, "syd", c.Primary.DSN()+opts, nil, withPQ(nil))
	lax := startNode(t, "lax", c.Replicas[0].DSN()+opts, []string{syd.GossipAddr()}, withPQ(nil))
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	db := lax.OpenDB()
	defer db.Close()
	_, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS pqopts (id int, b bytea)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO pqopts VALUES ($1, $2)", 1, []byte{0, 1, 2})
	require.NoError(t, err, "the write is awaited on the replica")
	var b []byte
	require.NoError(t, db.QueryRowContext(ctx, "SELECT b FROM pqopts WHERE id = 1").Scan(&b))
	assert.Equal(t, []byte{0, 1, 2}, b)
}

// An empty statement with arguments gets lib/pq's own error with lib/pq
// (flypg answers pgx's panic with pgx's message, and must not with lib/pq).
func TestPQEmptyStatementWithArguments(t *testing.T) {
	r := startPQRegions(t, nil, nil)
	ctx := testCtx(t)
	_, want := r.primary.ExecContext(ctx, "", 1)
	require.Error(t, want)
	_, err := r.laxDB.ExecContext(ctx, "", 1)
	require.Error(t, err)
	assert.Equal(t, want.Error(), err.Error())
}

// A lib/pq node in a pgx cluster: its forwarded statements are refused
// before anything runs, and the error says so — not "outcome unknown" or
// "connection lost" (it was either, before), which would make a caller
// treat a write that never ran as maybe committed.
func TestPQMixedDriversAreADefiniteError(t *testing.T) {
	c := cluster(t)
	syd := startNode(t, "syd", c.Primary.DSN(), nil, nil)
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, withPQ(nil))
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	require.NoError(t, c.Primary.Exec(ctx, "DROP TABLE IF EXISTS pq_mixed; CREATE TABLE pq_mixed (id int)"))
	require.NoError(t, c.Sync(ctx))
	primary := pgxDB(t, c.Primary.DSN())
	db := lax.OpenDB()
	defer db.Close()

	_, err := db.ExecContext(ctx, "INSERT INTO pq_mixed VALUES ($1)", 1)
	require.Error(t, err)
	assert.NotErrorIs(t, err, flypg.ErrUnknownOutcome)
	assert.Contains(t, err.Error(), "same Config.Driver")

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pq_mixed VALUES (2)") // no arguments: runs
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pq_mixed VALUES ($1)", 3)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "lost mid-transaction")
	assert.Contains(t, err.Error(), "same Config.Driver")
	_, err = tx.ExecContext(ctx, "INSERT INTO pq_mixed VALUES (4)")
	assert.ErrorIs(t, err, flypg.ErrTxGone, "the refusal aborted the transaction")
	assert.Error(t, tx.Commit())

	// Pipelined: the COMMIT travels with the refused statement, and must
	// not commit the one before it.
	pctx := flypg.Pipeline(ctx)
	ptx, err := db.BeginTx(pctx, nil)
	require.NoError(t, err)
	_, _ = ptx.ExecContext(pctx, "INSERT INTO pq_mixed VALUES (5)")
	_, _ = ptx.ExecContext(pctx, "INSERT INTO pq_mixed VALUES ($1)", 6)
	err = ptx.Commit()
	require.Error(t, err)
	assert.NotErrorIs(t, err, flypg.ErrUnknownOutcome)

	var n int
	require.NoError(t, primary.QueryRowContext(ctx, "SELECT count(*) FROM pq_mixed").Scan(&n))
	assert.Zero(t, n)
}
