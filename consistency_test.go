package flypg_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
)

// Pipelined remote transactions: Exec returns at once, and what was
// queued travels with the next point that needs an answer — BEGIN, the
// statements and COMMIT in one round trip when nothing in between does.
func TestPipelinedTransaction(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS pl; CREATE TABLE pl (id int PRIMARY KEY, v text)")
	ctx := testCtx(t)
	trips := func() int64 { return r.lax.Stats().RoundTrips }

	before := trips()
	tx, err := r.laxDB.BeginTx(flypg.Pipeline(ctx), nil)
	require.NoError(t, err)
	var results []sql.Result
	for i := range 3 {
		res, err := tx.ExecContext(ctx, "INSERT INTO pl VALUES ($1, 'a')", i)
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
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT count(*) FROM pl").Scan(&n))
	assert.Equal(t, 3, n, "committed and awaited")

	// The same without Pipeline: one round trip per statement plus COMMIT.
	before = trips()
	tx, err = r.laxDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	for i := range 3 {
		_, err := tx.ExecContext(ctx, "INSERT INTO pl VALUES ($1, 'b')", 10+i)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	assert.Equal(t, before+4, trips())

	// A query, or asking for a result, sends what was queued with it.
	before = trips()
	tx, err = r.laxDB.BeginTx(flypg.Pipeline(ctx), nil)
	require.NoError(t, err)
	res, err := tx.ExecContext(ctx, "UPDATE pl SET v = 'c' WHERE id < 3")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO pl VALUES (20, 'c')")
	require.NoError(t, err)
	var c int
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT count(*) FROM pl WHERE v = 'c'").Scan(&c))
	assert.Equal(t, 4, c, "the query saw the queued statements' effects")
	assert.Equal(t, before+1, trips())
	affected, err := res.RowsAffected()
	require.NoError(t, err)
	assert.Equal(t, int64(3), affected)
	require.NoError(t, tx.Commit())
	assert.Equal(t, before+2, trips())
}

// The first error in a pipelined transaction aborts it: it is returned
// where the queue is sent and by Commit, as the driver's own error, and
// nothing commits.
func TestPipelinedTransactionError(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS ple; CREATE TABLE ple (id int PRIMARY KEY)")
	ctx := testCtx(t)
	tx, err := r.laxDB.BeginTx(flypg.Pipeline(ctx), nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO ple VALUES (1)")
	require.NoError(t, err)
	dup, err := tx.ExecContext(ctx, "INSERT INTO ple VALUES (1)")
	require.NoError(t, err, "queued")
	_, err = tx.ExecContext(ctx, "INSERT INTO ple VALUES (2)")
	require.NoError(t, err, "queued")
	err = tx.Commit()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "Commit returns the first error: %v", err)
	assert.Equal(t, "23505", pgErr.Code)
	_, err = dup.RowsAffected()
	assert.ErrorAs(t, err, &pgErr, "and so does the failed statement's result")
	var n int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM ple").Scan(&n))
	assert.Zero(t, n, "nothing committed")
	assert.Zero(t, r.syd.Stats().RemoteTx, "and the transaction is gone")
}

// Causal consistency across nodes: a write through one replica-region
// node, tracked, then a read on another node whose replica lags: with
// AfterLSN it is never stale (it waits, then goes to the primary); without,
// it is.
func TestTrackAndAfterLSNAcrossNodes(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 2})
	syd := startNode(t, "syd", c.Primary.DSN(), nil, nil)
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ams := startNode(t, "ams", c.Replicas[1].DSN(), []string{syd.GossipAddr()}, func(cfg *flypg.Config) { cfg.AwaitTimeout = 200 * time.Millisecond })
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	require.NoError(t, ams.WaitReady(ctx))
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE cz (id bigserial PRIMARY KEY)"))
	require.NoError(t, c.Sync(ctx))
	laxDB, amsDB := lax.OpenDB(), ams.OpenDB()
	defer laxDB.Close()
	defer amsDB.Close()
	require.NoError(t, c.Replicas[1].PauseReplay(ctx))
	defer func() { _ = c.Replicas[1].ResumeReplay(ctx) }()

	stale, fresh := 0, 0
	for range 10 {
		tctx, tracked := flypg.Track(ctx)
		var id int64
		require.NoError(t, laxDB.QueryRowContext(tctx, "INSERT INTO cz DEFAULT VALUES RETURNING id").Scan(&id))
		require.NotZero(t, tracked.LSN())
		tok := lax.Token(tracked.LSN())
		require.NotEmpty(t, tok)

		l, err := ams.ParseToken(tok)
		require.NoError(t, err, "a token from another node of the cluster is honoured")
		var seen bool
		require.NoError(t, amsDB.QueryRowContext(flypg.AfterLSN(ctx, l), "SELECT EXISTS (SELECT 1 FROM cz WHERE id = $1)", id).Scan(&seen))
		if seen {
			fresh++
		}
		require.NoError(t, amsDB.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM cz WHERE id = $1)", id).Scan(&seen))
		if !seen {
			stale++
		}
	}
	assert.Equal(t, 10, fresh, "with the token: never stale")
	assert.Equal(t, 10, stale, "without it, ams's paused replica is stale: the token made the difference")
	assert.GreaterOrEqual(t, ams.Stats().PrimaryReads, int64(10), "the reads the replica could not serve went to the primary")

	// A forged or foreign token is refused, never waited for.
	_, err := ams.ParseToken(lax.Token(1) + "x")
	assert.ErrorIs(t, err, flypg.ErrInvalidToken)
	_, err = ams.ParseToken("garbage")
	assert.ErrorIs(t, err, flypg.ErrInvalidToken)

	// In the primary region Track records local writes' positions too.
	sydDB := syd.OpenDB()
	defer sydDB.Close()
	tctx, tracked := flypg.Track(ctx)
	_, err = sydDB.ExecContext(tctx, "INSERT INTO cz DEFAULT VALUES")
	require.NoError(t, err)
	assert.NotZero(t, tracked.LSN(), "a local write on the primary is tracked")
	tctx, tracked = flypg.Track(ctx)
	require.NoError(t, sydDB.QueryRowContext(tctx, "SELECT count(*) FROM cz").Scan(new(int)))
	assert.Zero(t, tracked.LSN(), "a read records nothing")
}

// OnPrimary reads see what the primary has, whatever the local replica
// has replayed.
func TestOnPrimary(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, "DROP TABLE IF EXISTS op; CREATE TABLE op (id int)")
	ctx := testCtx(t)
	require.NoError(t, r.c.Replicas[0].PauseReplay(ctx))
	defer func() { require.NoError(t, r.c.Replicas[0].ResumeReplay(ctx)) }()
	_, err := r.primary.ExecContext(ctx, "INSERT INTO op VALUES (1)")
	require.NoError(t, err)
	var local, strong int
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT count(*) FROM op").Scan(&local))
	require.NoError(t, r.laxDB.QueryRowContext(flypg.OnPrimary(ctx), "SELECT count(*) FROM op").Scan(&strong))
	assert.Zero(t, local, "the paused replica has not seen it")
	assert.Equal(t, 1, strong, "OnPrimary read it on the primary")
	var rec bool
	require.NoError(t, r.laxDB.QueryRowContext(flypg.OnPrimary(ctx), "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.False(t, rec)
	// A read-only transaction under OnPrimary runs there too.
	tx, err := r.laxDB.BeginTx(flypg.OnPrimary(ctx), &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT count(*) FROM op").Scan(&strong))
	assert.Equal(t, 1, strong)
	_, err = tx.ExecContext(ctx, "INSERT INTO op VALUES (2)")
	assert.Error(t, err, "and stays read-only")
	require.NoError(t, tx.Rollback())
	_ = errors.New
	_ = context.Background
}
