package backend

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/wire"
)

// viaWire sends an error across the link as a serving node does and
// rebuilds it as the caller does.
func viaWire(t *testing.T, err error) error {
	t.Helper()
	e := PQ{}.EncodeError(err)
	require.NotNil(t, e, "%T %v is encoded", err, err)
	b, merr := wire.Marshal(e)
	require.NoError(t, merr)
	var back wire.Error
	require.NoError(t, wire.Unmarshal(b, &back))
	return PQ{}.DecodeError(&back)
}

// Every field of a *pq.Error — and the statement text lib/pq keeps inside
// it, which its Error() uses to say where the error is — survives the link:
// the rebuilt error is deeply equal to the one lib/pq returned locally.
func TestPQErrorFieldEqual(t *testing.T) {
	_, ref := pqDBs(t)
	ctx := testCtx(t)
	_, err := ref.ExecContext(ctx, `DROP TABLE IF EXISTS pqerr; DROP DOMAIN IF EXISTS pqpos;
		CREATE DOMAIN pqpos AS int CHECK (VALUE > 0);
		CREATE TABLE pqerr (id int CONSTRAINT pqerr_pk PRIMARY KEY, n int NOT NULL, p pqpos);
		INSERT INTO pqerr VALUES (1, 1, 1)`)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, query string
		args        []any
	}{
		{"syntax, with position", "SELEC 1", nil},
		{"unknown column, multi-line", "SELECT 1,\n  2,\n  nosuch FROM pqerr", nil},
		{"unique violation", "INSERT INTO pqerr VALUES (1, 1, 1)", nil},
		{"unique violation, extended protocol", "INSERT INTO pqerr VALUES ($1, 1, 1)", []any{1}},
		{"not null", "INSERT INTO pqerr VALUES (2, NULL, 1)", nil},
		{"domain check", "INSERT INTO pqerr VALUES (3, 1, -1)", nil},
		{"division by zero", "SELECT 1/0", nil},
		{"bad input, with position", "SELECT $1::int + 'x'::int", []any{1}},
		{"internal query", "DO $$ BEGIN EXECUTE 'SELECT nosuch FROM pqerr'; END $$", nil},
		{"raised with hint", "DO $$ BEGIN RAISE EXCEPTION 'boom' USING HINT = 'h', DETAIL = 'd', ERRCODE = 'P0099'; END $$", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, local := ref.ExecContext(ctx, tc.query, tc.args...)
			want, ok := local.(*pq.Error)
			require.True(t, ok, "lib/pq returns *pq.Error: %T %v", local, local)
			got := viaWire(t, local)
			pe, ok := got.(*pq.Error)
			require.True(t, ok, "rebuilt as *pq.Error itself: %T", got)
			assert.Equal(t, want, pe)
			assert.Equal(t, want.Error(), pe.Error())
			assert.Equal(t, want.ErrorWithDetail(), pe.ErrorWithDetail())
			assert.Equal(t, string(want.Code), PQ{}.SQLState(got))
			assert.Equal(t, string(want.Code), PQ{}.SQLState(fmt.Errorf("wrapped: %w", got)))
		})
	}
	assert.True(t, pqQueryKnown, "lib/pq's Error still has its query field")
}

// lib/pq's sentinel and its own refusals cross as what they are; a broken
// connection is not the driver's to encode (the serving node reports the
// outcome), and driver.ErrBadConn never reaches the caller's database/sql,
// which would resend the write.
func TestPQErrorKinds(t *testing.T) {
	got := viaWire(t, fmt.Errorf("commit: %w", pq.ErrInFailedTransaction))
	assert.Same(t, pq.ErrInFailedTransaction, got, "the sentinel itself (== and errors.Is)")
	assert.Same(t, pq.ErrInFailedTransaction, PQ{}.DecodeError(&wire.Error{Kind: wire.ErrCommitRollback}))

	refused := &pqOutcome{err: errors.New("pq: got 1 parameters but the statement requires 2"), outcome: Answered}
	got = viaWire(t, refused)
	assert.EqualError(t, got, "pq: got 1 parameters but the statement requires 2")
	var pe *pq.Error
	assert.False(t, errors.As(got, &pe))

	for _, err := range []error{
		driver.ErrBadConn, errPQNotSent, io.ErrUnexpectedEOF, context.Canceled,
		&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")},
		&pqOutcome{err: io.EOF, outcome: Broken},
	} {
		assert.Nil(t, PQ{}.EncodeError(err), "%v", err)
		assert.Empty(t, PQ{}.SQLState(err))
	}
	assert.Nil(t, PQ{}.DecodeError(&wire.Error{Kind: wire.ErrUnknown, Message: "x"}))
	assert.Nil(t, PQ{}.DecodeError(&wire.Error{Kind: wire.ErrOther, Message: "x"}))
}

// A pgx serving node (a misconfigured cluster) sends the numeric fields as
// numbers; they are kept.
func TestPQDecodesNumericFields(t *testing.T) {
	got := PQ{}.DecodeError(&wire.Error{Kind: wire.ErrPostgres, PG: map[string]string{"C": "42601", "M": "m", "S": "ERROR"}, Pos: 7, IPos: 3, Line: 1200})
	pe := got.(*pq.Error)
	assert.Equal(t, "7", pe.Position)
	assert.Equal(t, "3", pe.InternalPosition)
	assert.Equal(t, "1200", pe.Line)
	assert.Equal(t, "pq: m (42601)", pe.Error())
}

func TestPQOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Outcome
	}{
		{nil, Answered},
		{&pq.Error{Code: "23505"}, Answered},
		{fmt.Errorf("x: %w", &pq.Error{Code: "23505"}), Answered},
		{pq.ErrInFailedTransaction, Answered},
		{&pqOutcome{err: errors.New("pq: got 1 parameters"), outcome: Answered}, Answered},
		{errPQNotSent, NotSent},
		{driver.ErrBadConn, Broken},
		{io.ErrUnexpectedEOF, Broken},
		{&net.OpError{Op: "write", Err: errors.New("broken pipe")}, Broken},
	} {
		assert.Equal(t, tc.want, PQ{}.Outcome(tc.err), "%v", tc.err)
	}
}

// CheckNamedValue for a detached connection is lib/pq's own, value for
// value.
func TestPQCheckNamedValueMirrorsLibPQ(t *testing.T) {
	_, ref := pqDBs(t)
	ctx := testCtx(t)
	c, err := ref.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	var libpq driver.NamedValueChecker
	require.NoError(t, c.Raw(func(dc any) error {
		libpq = dc.(driver.NamedValueChecker)
		return nil
	}))
	b := []byte("b")
	ints := []int{1, 2}
	n := 5
	var nilInts *[]int
	for _, in := range []any{
		nil, int64(1), "s", 1.5, true, time.Unix(0, 0), []byte{1}, &b, json.RawMessage(`{}`),
		sql.NullString{String: "v", Valid: true}, pq.Array([]int64{1}),
		[]int64{1, 2}, []string{"a", "b c"}, ints, &ints, nilInts, [][]byte{{1}}, []float32{1.5},
		uint64(7), uint64(math.MaxInt64), uint64(math.MaxUint64), uint32(9), &n, 3, int8(-1),
		map[string]int{"a": 1}, struct{ A int }{1},
	} {
		want := driver.NamedValue{Ordinal: 1, Value: in}
		have := want
		werr := libpq.CheckNamedValue(&want)
		herr := PQ{}.CheckNamedValue(&have)
		assert.Equal(t, werr, herr, "%T", in)
		assert.Equal(t, want, have, "%T", in)
	}
}

// BEGIN is the statement lib/pq's BeginTx sends, options refused as it
// refuses them.
func TestPQBeginSQLIsLibPQs(t *testing.T) {
	pool, ref := pqDBs(t)
	ctx := testCtx(t)
	state := "SELECT current_setting('transaction_isolation') || ' ' || current_setting('transaction_read_only')"
	for _, iso := range []sql.IsolationLevel{sql.LevelDefault, sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable} {
		for _, ro := range []bool{false, true} {
			tx, err := ref.BeginTx(ctx, &sql.TxOptions{Isolation: iso, ReadOnly: ro})
			require.NoError(t, err)
			var want string
			require.NoError(t, tx.QueryRowContext(ctx, state).Scan(&want))
			require.NoError(t, tx.Rollback())

			begin, err := PQ{}.BeginSQL(driver.TxOptions{Isolation: driver.IsolationLevel(iso), ReadOnly: ro})
			require.NoError(t, err)
			c, err := pool.Conn(ctx)
			require.NoError(t, err)
			_, err = PQ{}.Exec(ctx, c, &wire.Statement{Query: begin, Simple: true}, nil)
			require.NoError(t, err)
			row, err := PQ{}.SimpleRow(ctx, c, state)
			require.NoError(t, err)
			_, err = PQ{}.Exec(ctx, c, &wire.Statement{Query: "ROLLBACK", Simple: true}, nil)
			require.NoError(t, err)
			c.Close()
			assert.Equal(t, want, *row[0], "%v read-only=%v", iso, ro)
		}
	}
	for _, iso := range []sql.IsolationLevel{sql.LevelSnapshot, sql.LevelLinearizable, sql.LevelWriteCommitted} {
		_, want := ref.BeginTx(ctx, &sql.TxOptions{Isolation: iso})
		require.Error(t, want)
		_, got := PQ{}.BeginSQL(driver.TxOptions{Isolation: driver.IsolationLevel(iso)})
		assert.EqualError(t, got, want.Error())
	}
}

// collect runs a statement as the serving node does and decodes its reply
// as the caller does.
type collected struct {
	parts []*wire.Part
	dec   RowDecoder
	rows  [][]driver.Value
}

func run(ctx context.Context, t *testing.T, pool *sql.DB, st *wire.Statement) (*collected, int64, error) {
	t.Helper()
	c, err := pool.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	out := &collected{}
	n, err := PQ{}.Exec(ctx, c, st, func(p *wire.Part) error {
		// What travels is what was encoded when sent: a part sent and
		// then changed by the sender would be caught here.
		b, err := wire.Marshal(p)
		require.NoError(t, err)
		var q wire.Part
		require.NoError(t, wire.Unmarshal(b, &q))
		out.parts = append(out.parts, &q)
		return nil
	})
	for _, p := range out.parts {
		if p.Described {
			dec, derr := PQ{}.Decoder(nil, p)
			require.NoError(t, derr)
			out.dec = dec
			continue
		}
		for i := range out.dec.Rows(p) {
			dest := make([]driver.Value, len(out.dec.Columns()))
			require.NoError(t, out.dec.Decode(p, i, dest))
			out.rows = append(out.rows, dest)
		}
	}
	return out, n, err
}

// A forwarded query's rows are lib/pq's values, copied out of its read
// buffer (which the next row overwrites), in parts of bounded size; its
// column answers are lib/pq's.
func TestPQExecStreamsLibPQsRows(t *testing.T) {
	pool, ref := pqDBs(t)
	ctx := testCtx(t)
	const n = 40000
	q := "SELECT g, md5(g::text)::uuid, (g * 1.5)::numeric(10,2), repeat('x', g % 7), g % 3 = 0, NULLIF(g % 5, 0)::int2 FROM generate_series(1, $1::int) g"
	got, affected, err := run(ctx, t, pool, &wire.Statement{Query: q, Rows: true, Values: []wire.Value{{Kind: wire.KindInt64, I: n}}})
	require.NoError(t, err)
	assert.EqualValues(t, n, affected, "the command tag's count")

	rows, err := ref.QueryContext(ctx, q, n)
	require.NoError(t, err)
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	require.NoError(t, err)
	cols, _ := rows.Columns()
	assert.Equal(t, cols, got.dec.Columns())
	for i, ct := range cts {
		assert.Equal(t, ct.DatabaseTypeName(), got.dec.ColumnTypeDatabaseTypeName(i), "column %d", i)
		assert.Equal(t, ct.ScanType(), got.dec.ColumnTypeScanType(i), "column %d", i)
		l, ok := ct.Length()
		gl, gok := got.dec.ColumnTypeLength(i)
		assert.Equal(t, [2]any{l, ok}, [2]any{gl, gok})
		p, s, ok := ct.DecimalSize()
		gp, gs, gok := got.dec.ColumnTypePrecisionScale(i)
		assert.Equal(t, [3]any{p, s, ok}, [3]any{gp, gs, gok})
		nu, ok := ct.Nullable()
		gnu, gok := got.dec.ColumnTypeNullable(i)
		assert.Equal(t, [2]bool{nu, ok}, [2]bool{gnu, gok})
	}
	i := 0
	for rows.Next() {
		want := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for j := range want {
			ptrs[j] = &want[j]
		}
		require.NoError(t, rows.Scan(ptrs...))
		require.Less(t, i, len(got.rows))
		for j := range want {
			require.Equal(t, want[j], any(got.rows[i][j]), "row %d column %d", i, j)
		}
		i++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, n, i)
	assert.Len(t, got.rows, n)

	parts := 0
	for _, p := range got.parts {
		if len(p.Rows) == 0 {
			continue
		}
		parts++
		cells := 0
		for _, r := range p.Rows {
			cells += len(r)
		}
		assert.LessOrEqual(t, cells, wire.MaxPartCells)
	}
	assert.Greater(t, parts, 1, "the rows came in several parts")
}

// What lib/pq refuses, and what PostgreSQL answers, is an answer; a
// connection already known broken sends nothing; one that breaks under the
// statement may have run it.
func TestPQExecOutcomes(t *testing.T) {
	pool, ref := pqDBs(t)
	ctx := testCtx(t)
	_, err := ref.ExecContext(ctx, "DROP TABLE IF EXISTS pqout; CREATE TABLE pqout (id int PRIMARY KEY)")
	require.NoError(t, err)

	_, _, err = run(ctx, t, pool, &wire.Statement{Query: "INSERT INTO pqout VALUES ($1), ($2)", Values: []wire.Value{{Kind: wire.KindInt64, I: 1}}})
	_, want := ref.ExecContext(ctx, "INSERT INTO pqout VALUES ($1), ($2)", 1)
	require.Error(t, want)
	require.Error(t, err)
	assert.Equal(t, Answered, PQ{}.Outcome(err), "lib/pq refused it before running it")
	assert.EqualError(t, viaWire(t, err), want.Error())

	_, _, err = run(ctx, t, pool, &wire.Statement{Query: "INSERT INTO pqout VALUES (1), (1)", Simple: true})
	assert.Equal(t, Answered, PQ{}.Outcome(err))
	assert.Equal(t, "23505", PQ{}.SQLState(err))

	// A serving connection killed under the next statement.
	c, err := pool.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	row, err := PQ{}.SimpleRow(ctx, c, "SELECT pg_backend_pid()")
	require.NoError(t, err)
	_, err = ref.ExecContext(ctx, "SELECT pg_terminate_backend($1::int)", *row[0])
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var alive bool
		return ref.QueryRowContext(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1::int)", *row[0]).Scan(&alive) == nil && !alive
	}, 10*time.Second, 5*time.Millisecond)
	_, err = PQ{}.Exec(ctx, c, &wire.Statement{Query: "INSERT INTO pqout VALUES (5)", Simple: true}, nil)
	require.Error(t, err)
	assert.Equal(t, Broken, PQ{}.Outcome(err), "sent on a dead connection: lib/pq cannot tell whether it ran (%v)", err)
	assert.Nil(t, PQ{}.EncodeError(err))
}

// The caller's link fails while a RETURNING write's rows stream out: lib/pq
// drains them and the write commits, so the outcome is not "answered" (which
// would tell the caller it did not commit) but unknown.
func TestPQReplyLostMidRowsIsNotAnswered(t *testing.T) {
	pool, ref := pqDBs(t)
	ctx := testCtx(t)
	_, err := ref.ExecContext(ctx, "DROP TABLE IF EXISTS pqmid; CREATE TABLE pqmid (id int, t text)")
	require.NoError(t, err)
	c, err := pool.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	sent := 0
	lost := errors.New("link lost")
	_, err = PQ{}.Exec(ctx, c, &wire.Statement{Query: "INSERT INTO pqmid SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g RETURNING *", Rows: true, Simple: true},
		func(*wire.Part) error {
			if sent++; sent > 2 {
				return lost
			}
			return nil
		})
	require.ErrorIs(t, err, lost)
	assert.Equal(t, Broken, PQ{}.Outcome(err), "it may have committed")
	assert.Nil(t, PQ{}.EncodeError(err))
	var n int
	require.NoError(t, ref.QueryRowContext(ctx, "SELECT count(*) FROM pqmid").Scan(&n))
	assert.Equal(t, 20000, n, "and it did")
}

// fakeConn is a lib/pq-shaped connection lib/pq has marked broken.
type fakeConn struct{ used bool }

func (c *fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("no") }
func (c *fakeConn) Close() error                        { return nil }
func (c *fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("no") }
func (c *fakeConn) IsValid() bool                       { return false }
func (c *fakeConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	c.used = true
	return nil, driver.ErrBadConn
}
func (c *fakeConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	c.used = true
	return nil, driver.ErrBadConn
}

type fakeConnector struct{ c *fakeConn }

func (f fakeConnector) Connect(context.Context) (driver.Conn, error) { return f.c, nil }
func (f fakeConnector) Driver() driver.Driver                        { return nil }

func TestPQBrokenConnectionIsNotSent(t *testing.T) {
	fc := &fakeConn{}
	db := sql.OpenDB(fakeConnector{fc})
	defer db.Close()
	ctx := testCtx(t)
	c, err := db.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	_, err = PQ{}.Exec(ctx, c, &wire.Statement{Query: "INSERT INTO t VALUES (1)", Simple: true}, nil)
	assert.Equal(t, NotSent, PQ{}.Outcome(err))
	assert.ErrorIs(t, err, driver.ErrBadConn, "database/sql discards the connection")
	assert.False(t, fc.used, "nothing was sent on it")
}

// A pooled connection whose server process died is found out before a
// statement is sent on it, as pgx's stdlib finds it out: a write never
// gets an unknown outcome for it.
func TestPQDeadPooledConnectionIsReplaced(t *testing.T) {
	pool, ref := pqDBs(t)
	ctx := testCtx(t)
	_, err := ref.ExecContext(ctx, "DROP TABLE IF EXISTS pqstale; CREATE TABLE pqstale (id int)")
	require.NoError(t, err)
	pool.SetMaxOpenConns(1)
	var pid int
	require.NoError(t, pool.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	used := time.Now()
	_, err = ref.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var alive bool
		return ref.QueryRowContext(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&alive) == nil && !alive
	}, 10*time.Second, 5*time.Millisecond)
	// The check is for connections idle longer than pgx's second.
	time.Sleep(time.Until(used.Add(pingIdle + 50*time.Millisecond)))

	c, err := pool.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	n, err := PQ{}.Exec(ctx, c, &wire.Statement{Query: "INSERT INTO pqstale VALUES ($1)", Values: []wire.Value{{Kind: wire.KindInt64, I: 1}}}, nil)
	require.NoError(t, err, "the statement ran on a live connection")
	assert.EqualValues(t, 1, n)
}

// COMMIT is lib/pq's: a transaction a statement failed rolls back with
// pq.ErrInFailedTransaction; a failure at COMMIT is the *pq.Error lib/pq
// returns from Tx.Commit.
func TestPQCommit(t *testing.T) {
	pool, ref := pqDBs(t)
	ctx := testCtx(t)
	_, err := ref.ExecContext(ctx, `DROP TABLE IF EXISTS pqc; CREATE TABLE pqc (id int CONSTRAINT pqc_u UNIQUE DEFERRABLE INITIALLY DEFERRED)`)
	require.NoError(t, err)
	begin, err := PQ{}.BeginSQL(driver.TxOptions{})
	require.NoError(t, err)
	tx := func(stmts ...string) (error, []error) {
		c, err := pool.Conn(ctx)
		require.NoError(t, err)
		defer c.Close()
		_, err = PQ{}.Exec(ctx, c, &wire.Statement{Query: begin, Simple: true}, nil)
		require.NoError(t, err)
		var errs []error
		for _, s := range stmts {
			_, err := PQ{}.Exec(ctx, c, &wire.Statement{Query: s, Simple: true}, nil)
			errs = append(errs, err)
		}
		cerr := PQ{}.Commit(ctx, c)
		// The connection is usable after, outside a transaction.
		row, err := PQ{}.SimpleRow(ctx, c, "SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND xact_start IS NOT NULL AND state = 'idle in transaction')")
		require.NoError(t, err)
		assert.Equal(t, "0", *row[0])
		return cerr, errs
	}

	cerr, _ := tx("INSERT INTO pqc VALUES (1)")
	require.NoError(t, cerr)

	cerr, errs := tx("INSERT INTO pqc VALUES (2)", "SELECT 1/0")
	require.Error(t, errs[1])
	assert.Same(t, pq.ErrInFailedTransaction, cerr, "lib/pq's own sentinel")
	assert.Equal(t, Answered, PQ{}.Outcome(cerr))
	assert.Same(t, pq.ErrInFailedTransaction, viaWire(t, cerr))

	local, err := ref.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = local.ExecContext(ctx, "INSERT INTO pqc VALUES (1)")
	require.NoError(t, err)
	want := local.Commit()
	require.Error(t, want)
	cerr, errs = tx("INSERT INTO pqc VALUES (1)")
	require.NoError(t, errs[0])
	require.IsType(t, &pq.Error{}, cerr)
	assert.Equal(t, want, cerr, "the deferred violation at COMMIT, as lib/pq's Tx.Commit returns it")
	assert.Equal(t, want, viaWire(t, cerr))

	var n int
	require.NoError(t, ref.QueryRowContext(ctx, "SELECT count(*) FROM pqc").Scan(&n))
	assert.Equal(t, 1, n, "only the first transaction committed")
}

func TestPQSimpleRow(t *testing.T) {
	pool, _ := pqDBs(t)
	ctx := testCtx(t)
	c, err := pool.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	row, err := PQ{}.SimpleRow(ctx, c, "SELECT 'x'::text, 7::int8, NULL::text, true, 1.5::float8, '0/16B3748'::pg_lsn::text; RESET ALL")
	require.NoError(t, err)
	var got []any
	for _, v := range row {
		if v == nil {
			got = append(got, nil)
			continue
		}
		got = append(got, *v)
	}
	assert.Equal(t, []any{"x", "7", nil, "t", "1.5", "0/16B3748"}, got)

	_, err = PQ{}.SimpleRow(ctx, c, "SELECT 1 WHERE false")
	assert.ErrorContains(t, err, "no row")
	_, err = PQ{}.SimpleRow(ctx, c, "SELECT 1; SELECT 1/0")
	assert.Equal(t, "22012", PQ{}.SQLState(err), "an error in a later statement is reported")
	row, err = PQ{}.SimpleRow(ctx, c, "SELECT 2")
	require.NoError(t, err, "the connection is usable after")
	assert.Equal(t, "2", *row[0])
}

// Arguments cross as driver values; a time crosses with its offset — all
// lib/pq sends of its zone — so that a local time is this node's, not the
// serving node's.
func TestPQPrepare(t *testing.T) {
	st, err := PQ{}.Prepare(context.Background(), nil, "SELECT 1", nil, true, nil)
	require.NoError(t, err)
	assert.True(t, st.Simple, "no arguments: lib/pq's simple protocol")

	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	when := time.Date(2024, 2, 29, 13, 14, 15, 123456789, ny)
	args := []any{nil, int64(1), 2.5, true, []byte{0, 1}, []byte{}, "s", when, when.Local(), when.UTC()}
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	st, err = PQ{}.Prepare(context.Background(), nil, "x", named, false, func(context.Context, string) (*wire.Description, error) {
		t.Fatal("lib/pq needs no description")
		return nil, nil
	})
	require.NoError(t, err)
	b, err := wire.Marshal(st)
	require.NoError(t, err)
	var back wire.Statement
	require.NoError(t, wire.Unmarshal(b, &back))
	require.Len(t, back.Values, len(args))
	for i, v := range back.Values {
		g, err := v.Go()
		require.NoError(t, err)
		if w, ok := args[i].(time.Time); ok {
			assert.Equal(t, string(pq.FormatTimestamp(w)), string(pq.FormatTimestamp(g.(time.Time))), "the text lib/pq sends")
			continue
		}
		assert.Equal(t, args[i], g)
	}

	// The caller may reuse its buffer once Exec returns (a pipelined
	// transaction sends later).
	buf := []byte("before")
	st, err = PQ{}.Prepare(context.Background(), nil, "x", []driver.NamedValue{{Ordinal: 1, Value: buf}}, false, nil)
	require.NoError(t, err)
	copy(buf, "AFTER!")
	assert.Equal(t, []byte("before"), st.Values[0].B)

	_, err = PQ{}.Prepare(context.Background(), nil, "x", []driver.NamedValue{{Ordinal: 1, Value: struct{ A int }{}}}, false, nil)
	assert.ErrorIs(t, err, wire.ErrUnsupported)
	assert.ErrorContains(t, err, "struct { A int }")
}

func TestPQRefusesOtherDrivers(t *testing.T) {
	_, err := PQ{}.Decoder(nil, &wire.Part{Described: true, Fields: []wire.Field{{Name: "a", DataTypeOID: 23}}})
	assert.ErrorContains(t, err, "same Driver")
	_, err = PQ{}.Describe(context.Background(), nil, "SELECT 1")
	assert.ErrorContains(t, err, "does not describe")
	pool, _ := pqDBs(t)
	ctx := testCtx(t)
	c, err := pool.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	_, err = PQ{}.Exec(ctx, c, &wire.Statement{Query: "SELECT $1::int", Params: &wire.Params{Values: [][]byte{{0, 0, 0, 1}}}}, nil)
	assert.ErrorContains(t, err, "same Driver")
	assert.Equal(t, Answered, PQ{}.Outcome(err))
}

func TestPQConnectorHidesThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:hunter2secret@local host/db",
		"postgres://u:hunter2secret%zz@h/db",
		"host=x password=hunter2secret sslmode=bogus",
	} {
		_, err := PQ{}.Connector(dsn)
		require.Error(t, err, dsn)
		assert.NotContains(t, err.Error(), "hunter2secret", dsn)
	}
	_, err := PQ{}.Connector(primary(t).DSN())
	require.NoError(t, err)
}

func TestForNamePostgres(t *testing.T) {
	b, err := ForName("postgres")
	require.NoError(t, err)
	assert.Equal(t, "postgres", b.Name())
	assert.IsType(t, PQ{}, b)
	_, err = ForName("mysql")
	assert.ErrorContains(t, err, `"postgres"`)
}

// Whatever a peer sends as an error, rebuilding it and printing it never
// panics (lib/pq's ErrorWithDetail indexes the query by the position).
func FuzzPQDecodeError(f *testing.F) {
	f.Add("42601", "syntax error", "5", "SELEC 1", "", int32(0))
	f.Add("42703", "column \"x\" does not exist", "40", "SELECT\n\tx\nFROM t", "2", int32(0))
	f.Add("", "", "", "", "", int32(9))
	f.Fuzz(func(t *testing.T, code, msg, pos, query, ipos string, npos int32) {
		e := &wire.Error{Kind: wire.ErrPostgres, Pos: npos,
			PG: map[string]string{"C": code, "M": msg, "P": pos, "p": ipos, pqQueryKey: query}}
		err := PQ{}.DecodeError(e)
		pe, ok := err.(*pq.Error)
		if !ok {
			t.Fatalf("not a *pq.Error: %T", err)
		}
		_ = pe.Error()
		_ = pe.ErrorWithDetail()
		if !strings.Contains(pe.Error(), msg) {
			t.Fatalf("message lost: %q", pe.Error())
		}
	})
}
