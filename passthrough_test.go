package flypg_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/conformance"
)

// pair opens the same database through plain pgx and through flypg in dev
// mode, so every check can compare the two.
func pair(t *testing.T, dsn string) (ref, got *sql.DB) {
	t.Helper()
	ref, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	got, err = sql.Open(flypg.DriverName, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { ref.Close(); got.Close() })
	return ref, got
}

func TestPassthroughConformance(t *testing.T) {
	ctx := testCtx(t)
	ref, got := pair(t, cluster(t).Primary.DSN())
	for _, tc := range conformance.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			q := "SELECT " + tc.Expr
			want, err := conformance.Query(ctx, ref, q, tc.Args...)
			require.NoError(t, err, "reference pgx")
			have, err := conformance.Query(ctx, got, q, tc.Args...)
			require.NoError(t, err, "flypg")
			require.NotEmpty(t, want.Rows)
			assert.Equal(t, want.Columns, have.Columns)
			assert.Equal(t, want.Types, have.Types)
			assert.Equal(t, want.Describe(), have.Describe())
		})
	}
}

func TestPassthroughReplicaReadsAndRejectsWrites(t *testing.T) {
	ctx := testCtx(t)
	c := cluster(t)
	_, got := pair(t, c.Replicas[0].DSN())

	var inRecovery bool
	require.NoError(t, got.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
	assert.True(t, inRecovery, "a read runs on the replica")

	_, err := got.ExecContext(ctx, "CREATE TABLE must_fail (id int)")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "25006", pgErr.Code, "a dev-mode write on a replica fails like the replica says")
}

func TestPassthroughExecAndPrepared(t *testing.T) {
	ctx := testCtx(t)
	ref, got := pair(t, cluster(t).Primary.DSN())
	_, err := ref.ExecContext(ctx, "DROP TABLE IF EXISTS pt_items; CREATE TABLE pt_items (id serial PRIMARY KEY, name text UNIQUE, n int)")
	require.NoError(t, err)

	for _, db := range []*sql.DB{ref, got} {
		res, err := db.ExecContext(ctx, "INSERT INTO pt_items (name, n) SELECT 'x' || g, g FROM generate_series(1, 3) g")
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 3, n)

		res, err = db.ExecContext(ctx, "UPDATE pt_items SET n = n + 1 WHERE n > $1", 1)
		require.NoError(t, err)
		n, err = res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 2, n)

		var id int64
		var name string
		require.NoError(t, db.QueryRowContext(ctx, "INSERT INTO pt_items (name, n) VALUES ($1, $2) RETURNING id, name",
			"ret-"+strings.Repeat("z", 3), 9).Scan(&id, &name))
		assert.Positive(t, id)
		assert.Equal(t, "ret-zzz", name)

		st, err := db.PrepareContext(ctx, "SELECT n FROM pt_items WHERE name = $1")
		require.NoError(t, err)
		var v int
		require.NoError(t, st.QueryRowContext(ctx, "ret-zzz").Scan(&v))
		assert.Equal(t, 9, v)
		require.NoError(t, st.Close())

		ins, err := db.PrepareContext(ctx, "DELETE FROM pt_items WHERE n >= $1")
		require.NoError(t, err)
		res, err = ins.ExecContext(ctx, 0)
		require.NoError(t, err)
		n, err = res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 4, n)
		require.NoError(t, ins.Close())
	}
}

func TestPassthroughTransactions(t *testing.T) {
	ctx := testCtx(t)
	ref, got := pair(t, cluster(t).Primary.DSN())
	_, err := ref.ExecContext(ctx, "DROP TABLE IF EXISTS pt_tx; CREATE TABLE pt_tx (id int PRIMARY KEY)")
	require.NoError(t, err)

	count := func() int {
		var n int
		require.NoError(t, ref.QueryRowContext(ctx, "SELECT count(*) FROM pt_tx").Scan(&n))
		return n
	}

	tx, err := got.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pt_tx VALUES (1)")
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	assert.Equal(t, 0, count(), "rollback leaves nothing")

	tx, err = got.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pt_tx VALUES (1)")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	assert.Equal(t, 1, count(), "commit keeps the row")

	levels := []struct {
		level sql.IsolationLevel
		want  string
	}{
		{sql.LevelDefault, "read committed"},
		{sql.LevelReadCommitted, "read committed"},
		{sql.LevelRepeatableRead, "repeatable read"},
		{sql.LevelSerializable, "serializable"},
	}
	for _, l := range levels {
		for _, ro := range []bool{false, true} {
			tx, err := got.BeginTx(ctx, &sql.TxOptions{Isolation: l.level, ReadOnly: ro})
			require.NoError(t, err)
			var iso, readOnly string
			require.NoError(t, tx.QueryRowContext(ctx, "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')").Scan(&iso, &readOnly))
			assert.Equal(t, l.want, iso)
			assert.Equal(t, map[bool]string{false: "off", true: "on"}[ro], readOnly)
			if ro {
				_, err = tx.ExecContext(ctx, "INSERT INTO pt_tx VALUES (2)")
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr)
				assert.Equal(t, "25006", pgErr.Code)
			}
			require.NoError(t, tx.Rollback())
		}
	}
}

func TestPassthroughErrors(t *testing.T) {
	ctx := testCtx(t)
	ref, got := pair(t, cluster(t).Primary.DSN())
	_, err := ref.ExecContext(ctx, "DROP TABLE IF EXISTS pt_err; CREATE TABLE pt_err (id int CONSTRAINT pt_err_pk PRIMARY KEY)")
	require.NoError(t, err)
	_, err = ref.ExecContext(ctx, "INSERT INTO pt_err VALUES (1)")
	require.NoError(t, err)

	for _, q := range []string{
		"INSERT INTO pt_err VALUES (1)",
		"SELEC 1",
		"SELECT 1/0",
		"SELECT * FROM no_such_table",
	} {
		t.Run(q, func(t *testing.T) {
			_, wantErr := ref.ExecContext(ctx, q)
			_, gotErr := got.ExecContext(ctx, q)
			require.Error(t, wantErr)
			require.Error(t, gotErr)
			pgErr, ok := gotErr.(*pgconn.PgError)
			require.True(t, ok, "flypg returns *pgconn.PgError itself (GORM type-asserts), got %T", gotErr)
			assert.NotEmpty(t, pgErr.Code)
			assert.Equal(t, conformance.ErrorFields(wantErr), conformance.ErrorFields(gotErr))
		})
	}
	_, err = got.ExecContext(ctx, "INSERT INTO pt_err VALUES (1)")
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr))
	assert.Equal(t, "23505", pgErr.Code)
	assert.Equal(t, "pt_err_pk", pgErr.ConstraintName)
}

func TestPassthroughCancel(t *testing.T) {
	ctx := testCtx(t)
	_, got := pair(t, cluster(t).Primary.DSN())
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := got.ExecContext(cctx, "SELECT pg_sleep(10)")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second, "the query was cancelled, not run to completion")

	// The cancel request reaches the server asynchronously; await its effect.
	assert.Eventually(t, func() bool {
		var n int
		err := got.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'").Scan(&n)
		return err == nil && n == 0
	}, 3*time.Second, 5*time.Millisecond, "the server stopped running the cancelled query")
}

func TestPassthroughRawConn(t *testing.T) {
	ctx := testCtx(t)
	_, got := pair(t, cluster(t).Primary.DSN())
	sc, err := got.Conn(ctx)
	require.NoError(t, err)
	defer sc.Close()
	require.NoError(t, sc.PingContext(ctx))
	require.NoError(t, sc.Raw(func(dc any) error {
		u, ok := dc.(interface{ Unwrap() driver.Conn })
		require.True(t, ok, "flypg's conn exposes the wrapped connection")
		assert.NotNil(t, u.Unwrap())
		return nil
	}))
}

// In dev mode Track changes nothing: no position query after a write, no
// LSN (there is no other region to carry it to).
func TestPassthroughTrackRecordsNothing(t *testing.T) {
	ctx := testCtx(t)
	_, got := pair(t, cluster(t).Primary.DSN())
	_, err := got.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS pt_track (x int)")
	require.NoError(t, err)
	tctx, tr := flypg.Track(ctx)
	_, err = got.ExecContext(tctx, "INSERT INTO pt_track VALUES (1)")
	require.NoError(t, err)
	tx, err := got.BeginTx(tctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(tctx, "INSERT INTO pt_track VALUES (2)")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	assert.Zero(t, tr.LSN())
}

// Closing the default node on shutdown closes the pools sql.Open made on
// it; they do not start another node from the environment behind the
// app's back (they did, once their connections were discarded).
func TestPassthroughClosedDefaultNodeStartsNoOther(t *testing.T) {
	ctx := testCtx(t)
	_, got := pair(t, cluster(t).Primary.DSN())
	require.NoError(t, got.PingContext(ctx))
	n := flypg.DefaultNode()
	require.NotNil(t, n)
	require.NoError(t, n.Close())
	assert.ErrorIs(t, got.PingContext(ctx), flypg.ErrNodeClosed)
	assert.Nil(t, flypg.DefaultNode(), "no node was started again")
}
