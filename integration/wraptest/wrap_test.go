package wraptest_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/flypg/flypg/integration/internal/fixture"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readYourWrites runs the same database/sql calls through a wrapped
// database with the app in lax: autocommit writes, INSERT … RETURNING, a
// prepared write, a transaction, each read back at once while the
// replica's replay is delayed — and checks that flypg routed them.
func readYourWrites(t *testing.T, ctx context.Context, r *fixture.Regions, db *sql.DB, tag string) {
	counts := fixture.Watch(r.Lax)
	count := func(kind string) int {
		t.Helper()
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE kind = $1", kind).Scan(&n))
		return n
	}

	_, err := db.ExecContext(ctx, "INSERT INTO events (kind) VALUES ($1)", tag)
	require.NoError(t, err)
	assert.Equal(t, 1, count(tag), "an autocommit write is visible on the replica at once")

	var id int64
	require.NoError(t, db.QueryRowContext(ctx, "INSERT INTO events (kind) VALUES ($1) RETURNING id", tag+"-returning").Scan(&id))
	var kind string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT kind FROM events WHERE id = $1", id).Scan(&kind))
	assert.Equal(t, tag+"-returning", kind, "INSERT … RETURNING is visible")

	stmt, err := db.PrepareContext(ctx, "INSERT INTO events (kind) VALUES ($1)")
	require.NoError(t, err)
	_, err = stmt.ExecContext(ctx, tag+"-prepared")
	require.NoError(t, err)
	require.NoError(t, stmt.Close())
	assert.Equal(t, 1, count(tag+"-prepared"), "a prepared write is visible")

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO events (kind) VALUES ($1)", tag+"-tx")
	require.NoError(t, err)
	var inRecovery bool
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	assert.False(t, inRecovery, "a read-write transaction runs on the primary")
	require.NoError(t, tx.Commit())
	assert.Equal(t, 1, count(tag+"-tx"), "the commit is visible")

	// Array arguments pass the wrapper: lib/pq's Valuer, and a Go slice
	// that only pgx's own argument check accepts.
	for _, arg := range []any{pq.Array([]int64{id}), []int64{id}} {
		var got int64
		require.NoError(t, db.QueryRowContext(ctx, "SELECT id FROM events WHERE id = ANY($1)", arg).Scan(&got))
		assert.Equal(t, id, got)
	}

	require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	assert.True(t, inRecovery, "autocommit reads run on lax's replica")
	fixture.AssertRouted(t, counts())
}

// TestOtelsql runs the scenario through otelsql's three ways of wrapping
// flypg, inside a traced request, and checks the spans: otelsql saw the
// statements, and a forwarded write's span lasts at least the replica's
// replay delay — it times the wait for replay as well.
func TestOtelsql(t *testing.T) {
	r := suite.Regions(t)
	for _, o := range []struct {
		name string
		open func(t *testing.T) *sql.DB
	}{
		{"OpenDB", func(t *testing.T) *sql.DB { return openOtel(r.Lax, tracer) }},
		{"Open", func(t *testing.T) *sql.DB {
			db, err := openOtelByName(tracer)
			require.NoError(t, err)
			return db
		}},
		{"WrapDriver", func(t *testing.T) *sql.DB {
			db, err := sql.Open("flypg-otel", os.Getenv("DATABASE_URL"))
			require.NoError(t, err)
			return db
		}},
	} {
		t.Run(o.name, func(t *testing.T) {
			db := o.open(t)
			t.Cleanup(func() { db.Close() })
			ctx, root := tracer.Tracer("wraptest").Start(testCtx(t), "request")
			readYourWrites(t, ctx, r, db, fixture.Tag(t))
			root.End()

			var names []string
			var firstExec sdktrace.ReadOnlySpan
			for _, s := range spans.Ended() {
				if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
					continue
				}
				names = append(names, s.Name())
				if s.Name() == "sql.conn.exec" && firstExec == nil {
					firstExec = s
				}
			}
			assert.Contains(t, names, "sql.conn.exec")
			assert.Contains(t, names, "sql.conn.query")
			assert.Contains(t, names, "sql.tx.commit")
			require.NotNil(t, firstExec, "otelsql traced the first INSERT")
			assert.GreaterOrEqual(t, firstExec.EndTime().Sub(firstExec.StartTime()), r.ApplyDelay(),
				"the write's span includes flypg's wait for the delayed replay")
		})
	}
}

// TestSqlmw runs the scenario through sqlmw, on the driver name and on a
// node's connector, and checks the interceptor saw the statements.
func TestSqlmw(t *testing.T) {
	r := suite.Regions(t)
	for _, o := range []struct {
		name string
		open func(t *testing.T) (*sql.DB, *counting)
	}{
		{"Driver", func(t *testing.T) (*sql.DB, *counting) {
			db, err := sql.Open("flypg-sqlmw", os.Getenv("DATABASE_URL"))
			require.NoError(t, err)
			return db, interceptor
		}},
		{"NodeConnector", func(t *testing.T) (*sql.DB, *counting) {
			intr := &counting{}
			db, err := openSqlmw(r.Lax, intr)
			require.NoError(t, err)
			return db, intr
		}},
	} {
		t.Run(o.name, func(t *testing.T) {
			db, intr := o.open(t)
			t.Cleanup(func() { db.Close() })
			execs, queries := intr.execs.Load(), intr.queries.Load()
			readYourWrites(t, testCtx(t), r, db, fixture.Tag(t))
			assert.EqualValues(t, 2, intr.execs.Load()-execs, "the interceptor saw both Execs (autocommit, in the transaction)")
			assert.GreaterOrEqual(t, intr.queries.Load()-queries, int64(6), "the interceptor saw the queries")
		})
	}
}

// TestWrappedDriverIsFlypg pins the wrapping order: the wrapper is outside,
// flypg inside. otelsql.Open("pgx", …) would bypass flypg: its reads and
// writes would go wherever the URL points, the primary, across the WAN.
func TestWrappedDriverIsFlypg(t *testing.T) {
	r := suite.Regions(t)
	db, err := openOtelByName(tracer)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	counts := fixture.Watch(r.Lax)
	var inRecovery bool
	require.NoError(t, db.QueryRowContext(testCtx(t), "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	assert.True(t, inRecovery, "DATABASE_URL is the primary's, yet the read ran on lax's replica: flypg routed it")
	assert.EqualValues(t, 1, counts().Local)
}
