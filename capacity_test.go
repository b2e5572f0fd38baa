package flypg_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
)

// Capacity limits are back-pressure, not failures: 80 concurrent
// read-write transactions from one node (a normal GORM load) all commit,
// queueing for the serving node's bounded primary pool and for the node's
// transaction slots; the primary never sees more connections than the
// bound.
func TestConcurrentTransactionsQueue(t *testing.T) {
	c := cluster(t)
	syd := startNode(t, "syd", c.Primary.DSN(), nil, func(cfg *flypg.Config) {
		cfg.MaxServeConns = 10
		cfg.MaxTxPerPeer = 6
	})
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	db := lax.OpenDB()
	defer db.Close()
	_, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS cq; CREATE TABLE cq (id int PRIMARY KEY, w int)")
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for i := range 80 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				errs <- err
				return
			}
			for j := range 3 {
				if _, err := tx.ExecContext(ctx, "INSERT INTO cq VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET w = cq.w + 1", i*10+j, j); err != nil {
					_ = tx.Rollback()
					errs <- err
					return
				}
			}
			errs <- tx.Commit()
		}()
	}
	peak := 0
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	direct, err := sql.Open("pgx", c.Primary.DSN())
	require.NoError(t, err)
	defer direct.Close()
sample:
	for {
		select {
		case <-done:
			break sample
		case <-time.After(5 * time.Millisecond):
			var n int
			if direct.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state IN ('active', 'idle in transaction') AND query NOT LIKE '%pg_stat_activity%' AND application_name = ''").Scan(&n) == nil {
				peak = max(peak, n)
			}
		}
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM cq").Scan(&n))
	assert.Equal(t, 240, n, "every transaction committed, and it is visible at once")
	st := syd.Stats()
	var serving sql.DBStats
	for _, d := range st.Databases {
		serving = d.Serving
	}
	assert.LessOrEqual(t, serving.MaxOpenConnections, 10)
	assert.LessOrEqual(t, peak, 10+2, "the primary saw at most the bound (plus the role check and the sampler's own)")
	assert.Zero(t, st.RemoteTx)
}

// A caller whose deadline passes while it waits for a slot gets a clear
// error, not an unknown outcome: nothing ran.
func TestTransactionSlotWaitEndsAtTheDeadline(t *testing.T) {
	c := cluster(t)
	syd := startNode(t, "syd", c.Primary.DSN(), nil, func(cfg *flypg.Config) { cfg.MaxTxPerPeer = 1 })
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	db := lax.OpenDB()
	defer db.Close()
	hold, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = hold.ExecContext(ctx, "SELECT 1")
	require.NoError(t, err)
	defer hold.Rollback()

	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	tx, err := db.BeginTx(wctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(wctx, "SELECT 1")
	require.Error(t, err)
	assert.False(t, errors.Is(err, flypg.ErrUnknownOutcome), "%v", err)
	assert.Contains(t, err.Error(), "slot")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, strings.Count(err.Error(), context.DeadlineExceeded.Error()), "the reason is said once: %v", err)
	_ = tx.Rollback()
}

// The remote transaction's idle clock counts from the end of a statement,
// not its start: a statement longer than the idle timeout does not doom
// its transaction; only silence does.
func TestRemoteTransactionIdleClock(t *testing.T) {
	c := cluster(t)
	syd := startNode(t, "syd", c.Primary.DSN(), nil, func(cfg *flypg.Config) { cfg.RemoteTxIdleTimeout = 500 * time.Millisecond })
	lax := startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	ctx := testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	db := lax.OpenDB()
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "SELECT pg_sleep(1.2)")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "SELECT 1")
	require.NoError(t, err, "busy is not idle")
	require.NoError(t, tx.Commit())

	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "SELECT 1")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return syd.Stats().RemoteTx == 0 }, 5*time.Second, 10*time.Millisecond, "idle too long: rolled back")
	assert.ErrorIs(t, tx.Commit(), flypg.ErrTxGone)
}
