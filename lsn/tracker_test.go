package lsn_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/lsn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func connect(t testing.TB, ctx context.Context, dsn string) *pgx.Conn {
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func newTracker(t testing.TB, cfg lsn.Config) *lsn.Tracker {
	tr, err := lsn.NewTracker(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	return tr
}

// commit runs an autocommit statement on the primary and returns the LSN to
// wait for: the WAL insert position read on the same session afterwards.
func commit(t testing.TB, ctx context.Context, primary *pgx.Conn, stmt string, args ...any) lsn.LSN {
	_, err := primary.Exec(ctx, stmt, args...)
	require.NoError(t, err)
	var pos lsn.LSN
	require.NoError(t, primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&pos))
	return pos
}

// setup starts a cluster with table t(id int) visible on the replica.
func setup(t *testing.T, ctx context.Context) (*pgcluster.Cluster, *pgx.Conn) {
	c := pgcluster.ForTest(t, pgcluster.Options{})
	primary := connect(t, ctx, c.Primary.DSN())
	_, err := primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY)")
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx))
	return c, primary
}

func waiters(tr *lsn.Tracker, n int) func() bool {
	return func() bool { return tr.Stats().Waiters == n }
}

// (1) The contract itself: after Wait, a write made on the primary is visible
// on the replica.
func TestWaitMakesWritesVisible(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	replica := connect(t, ctx, c.Replicas[0].DSN())
	tr := newTracker(t, lsn.Config{DSN: c.Replicas[0].DSN()})

	const n = 1000
	for i := range n {
		target := commit(t, ctx, primary, "INSERT INTO t VALUES ($1)", i)
		require.NoError(t, tr.Wait(ctx, target))
		// A target just past a WAL page header is reached at the boundary.
		assert.GreaterOrEqual(t, tr.Replayed()+40, target)
		var found bool
		require.NoError(t, replica.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM t WHERE id = $1)", i).Scan(&found))
		assert.True(t, found, "row %d visible on the replica after Wait(%s)", i, target)
	}
	s := tr.Stats()
	assert.Equal(t, uint64(n), s.Waits)
	assert.Zero(t, s.Timeouts)
	assert.Zero(t, s.Waiters)
	assert.Zero(t, s.Reconnects)
	assert.NotZero(t, s.WakeDelayP99)
	t.Logf("stats after %d writes: %+v", n, s)
}

// (2) Any number of waiters share one poller: one connection, one query in
// flight at a time, and every waiter wakes.
func TestManyWaitersShareOnePoller(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	var inFlight, maxInFlight atomic.Int32
	tr := newTracker(t, lsn.Config{DSN: c.Replicas[0].DSN(), PollHook: func() func() {
		n := inFlight.Add(1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		return func() { inFlight.Add(-1) }
	}})

	require.NoError(t, c.Replicas[0].PauseReplay(ctx))
	var targets []lsn.LSN
	for i := range 10 {
		targets = append(targets, commit(t, ctx, primary, "INSERT INTO t VALUES ($1)", i))
	}

	// Watch the replica's own view of the tracker while the waiters wait.
	sampler := connect(t, ctx, c.Replicas[0].DSN())
	stop := make(chan struct{})
	var maxConns, maxActive, samples int
	sampled := make(chan error, 1)
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var conns, active int
			err := sampler.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'active')
				FROM pg_stat_activity WHERE application_name = $1`, lsn.DefaultApplicationName).Scan(&conns, &active)
			if err != nil {
				sampled <- err
				return
			}
			samples++
			maxConns, maxActive = max(maxConns, conns), max(maxActive, active)
			select {
			case <-stop:
				sampled <- nil
				return
			case <-tick.C:
			}
		}
	}()

	const n = 10000
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range n {
		wg.Go(func() {
			if err := tr.Wait(ctx, targets[i%len(targets)]); err != nil {
				failed.Add(1)
			}
		})
	}
	require.Eventually(t, waiters(tr, n), time.Minute, time.Millisecond, "all %d waiters registered", n)
	require.NoError(t, c.Replicas[0].ResumeReplay(ctx))
	wg.Wait()
	close(stop)
	require.NoError(t, <-sampled)

	assert.Zero(t, failed.Load(), "every waiter woke without error")
	assert.Equal(t, int32(1), maxInFlight.Load(), "at most one poll in flight")
	assert.Equal(t, 1, maxConns, "one tracker connection (%d samples)", samples)
	assert.LessOrEqual(t, maxActive, 1, "at most one active tracker query")
	s := tr.Stats()
	assert.Zero(t, s.Waiters)
	assert.Equal(t, uint64(n), s.Waits)
	assert.GreaterOrEqual(t, tr.Replayed()+40, targets[len(targets)-1])
	t.Logf("%d waiters: %d polls, stats %+v", n, s.Polls, s)
}

// (3) An idle tracker issues no queries: its counter stands still and the
// server sees its connection idle with the same last query throughout.
func TestIdleTrackerIssuesNoQueries(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	tr := newTracker(t, lsn.Config{DSN: c.Replicas[0].DSN()})
	require.NoError(t, tr.Wait(ctx, commit(t, ctx, primary, "INSERT INTO t VALUES (1)")))

	observer := connect(t, ctx, c.Replicas[0].DSN())
	activity := func() (state string, queryStart time.Time) {
		require.NoError(t, observer.QueryRow(ctx, `SELECT state, query_start FROM pg_stat_activity
			WHERE application_name = $1`, lsn.DefaultApplicationName).Scan(&state, &queryStart))
		return state, queryStart
	}
	polls := tr.Stats().Polls
	_, start0 := activity()

	// A one-second observation window: a measurement period, not a wait for
	// something to happen.
	window := time.NewTimer(time.Second)
	defer window.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-window.C:
			done = true
		case <-tick.C:
		}
		state, start := activity()
		assert.Equal(t, "idle", state)
		assert.Equal(t, start0, start, "no query started on the tracker's connection")
	}
	assert.Equal(t, polls, tr.Stats().Polls, "no polls while idle")
}

// (4) A paused replica makes Wait time out with the target in the error;
// waiters with longer deadlines wake once replay resumes.
func TestPausedReplayTimesOutThenWakes(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN()})

	require.NoError(t, replica.PauseReplay(ctx))
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")

	results := make(chan error, 3)
	for range cap(results) {
		go func() { results <- tr.Wait(ctx, target) }()
	}
	require.Eventually(t, waiters(tr, 3), 10*time.Second, time.Millisecond)

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := tr.Wait(short, target)
	var we *lsn.WaitError
	require.ErrorAs(t, err, &we)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, target, we.Target)
	assert.Less(t, we.Replayed, target)
	assert.Positive(t, we.Waited)
	assert.Contains(t, err.Error(), target.String())
	assert.Equal(t, uint64(1), tr.Stats().Timeouts)
	assert.Equal(t, 3, tr.Stats().Waiters, "the long waiters still wait")

	require.NoError(t, replica.ResumeReplay(ctx))
	for range cap(results) {
		assert.NoError(t, <-results)
	}
	n, err := replica.QueryString(ctx, "SELECT count(*)::text FROM t")
	require.NoError(t, err)
	assert.Equal(t, "1", n)
}

// (5) On the primary there is nothing to wait for.
func TestPrimaryNeedsNoWait(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	tr := newTracker(t, lsn.Config{DSN: c.Primary.DSN()})
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")

	require.NoError(t, tr.Wait(ctx, target))
	require.NoError(t, tr.Wait(ctx, target+1<<40), "even a future LSN")
	inRecovery, err := tr.InRecovery(ctx)
	require.NoError(t, err)
	assert.False(t, inRecovery)
	s := tr.Stats()
	assert.Zero(t, s.Polls)
	assert.Equal(t, uint64(2), s.Waits)
	assert.Equal(t, uint64(1), s.Immediate, "the second Wait knew without asking")

	replicaTr := newTracker(t, lsn.Config{DSN: c.Replicas[0].DSN()})
	inRecovery, err = replicaTr.InRecovery(ctx)
	require.NoError(t, err)
	assert.True(t, inRecovery)
	assert.Zero(t, replicaTr.Stats().Polls, "InRecovery connects, it does not poll")
}

// (6) A replica that crashes and restarts under waiters: the tracker
// reconnects and the waiters still wake.
func TestReplicaRestartUnderWaiters(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN(), MaxReconnectDelay: 100 * time.Millisecond})
	require.NoError(t, tr.Wait(ctx, commit(t, ctx, primary, "INSERT INTO t VALUES (0)")), "connected")

	require.NoError(t, replica.PauseReplay(ctx))
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")
	results := make(chan error, 5)
	for range cap(results) {
		go func() { results <- tr.Wait(ctx, target) }()
	}
	require.Eventually(t, waiters(tr, cap(results)), 10*time.Second, time.Millisecond)

	require.NoError(t, replica.Kill())
	require.NoError(t, replica.Restart(ctx)) // replay is no longer paused after a restart
	for range cap(results) {
		assert.NoError(t, <-results)
	}
	s := tr.Stats()
	assert.Positive(t, s.Reconnects)
	assert.Positive(t, s.PollErrors, "the lost connection was noticed")
	n, err := replica.QueryString(ctx, "SELECT count(*)::text FROM t")
	require.NoError(t, err)
	assert.Equal(t, "2", n)
}

// A waiter whose context ends leaves at once, not at the next poll.
func TestCancelledWaiterLeavesAtOnce(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	tr := newTracker(t, lsn.Config{DSN: c.Replicas[0].DSN()})
	require.NoError(t, c.Replicas[0].PauseReplay(ctx))
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")

	wctx, cancel := context.WithCancel(ctx)
	result := make(chan error, 1)
	go func() { result <- tr.Wait(wctx, target) }()
	require.Eventually(t, waiters(tr, 1), 10*time.Second, time.Millisecond)
	cancel()
	err := <-result
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, tr.Stats().Waiters, "removed by the time Wait returned")

	// A context that is already done never registers.
	err = tr.Wait(wctx, target)
	var we *lsn.WaitError
	assert.ErrorAs(t, err, &we)
	assert.Equal(t, uint64(2), tr.Stats().Timeouts)
}

// Close wakes blocked waiters with ErrClosed; later calls get it too.
func TestCloseWakesWaiters(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	tr, err := lsn.NewTracker(lsn.Config{DSN: c.Replicas[0].DSN()})
	require.NoError(t, err)
	require.NoError(t, c.Replicas[0].PauseReplay(ctx))
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")

	results := make(chan error, 3)
	for range cap(results) {
		go func() { results <- tr.Wait(ctx, target) }()
	}
	require.Eventually(t, waiters(tr, cap(results)), 10*time.Second, time.Millisecond)
	require.NoError(t, tr.Close())
	for range cap(results) {
		assert.ErrorIs(t, <-results, lsn.ErrClosed)
	}
	assert.ErrorIs(t, tr.Wait(ctx, target), lsn.ErrClosed)
	_, err = tr.InRecovery(ctx)
	assert.ErrorIs(t, err, lsn.ErrClosed)
	assert.NoError(t, tr.Close(), "Close twice")
}

// LSN works as a pg_lsn argument and result with pgx and database/sql.
func TestLSNWithPostgres(t *testing.T) {
	ctx := testCtx(t)
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: -1})
	want := lsn.LSN(0x16_B374D848)

	conn := connect(t, ctx, c.Primary.DSN())
	var got lsn.LSN
	require.NoError(t, conn.QueryRow(ctx, "SELECT $1::pg_lsn", want).Scan(&got))
	assert.Equal(t, want, got, "pgx")
	var text string
	require.NoError(t, conn.QueryRow(ctx, "SELECT $1::pg_lsn::text", want).Scan(&text))
	assert.Equal(t, want.String(), text, "String matches PostgreSQL's output")

	db, err := sql.Open("pgx", c.Primary.DSN())
	require.NoError(t, err)
	defer db.Close()
	got = 0
	require.NoError(t, db.QueryRowContext(ctx, "SELECT $1::pg_lsn", want).Scan(&got))
	assert.Equal(t, want, got, "database/sql")
	var null sql.Null[lsn.LSN]
	require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_last_wal_replay_lsn()").Scan(&null))
	assert.False(t, null.Valid, "NULL on a primary")
	err = db.QueryRowContext(ctx, "SELECT pg_last_wal_replay_lsn()").Scan(&got)
	assert.True(t, errors.Is(err, lsn.ErrNull), "plain LSN refuses NULL: %v", err)
}

func TestNewTrackerValidates(t *testing.T) {
	for _, cfg := range []lsn.Config{
		{},
		{DSN: "postgres://%zz"},
		{DSN: "postgres://localhost/x", MinPollInterval: time.Second, MaxPollInterval: time.Millisecond},
	} {
		_, err := lsn.NewTracker(cfg)
		assert.Error(t, err, fmt.Sprintf("%+v", cfg))
	}
}

// emitToPageBoundary writes WAL on the primary (logical-decoding messages,
// which need no table and are byte-predictable) until a record ends exactly
// at a WAL page boundary, and returns pg_current_wal_insert_lsn() read right
// after: the boundary plus the next page's header.
func emitToPageBoundary(t *testing.T, ctx context.Context, primary *pgx.Conn) (boundary, insert lsn.LSN) {
	const (
		block = 8192
		// A message record with prefix "p" and n bytes of content takes
		// MAXALIGN(52 + n) bytes of WAL while its payload fits a short block
		// header (n ≤ 229), measured on PostgreSQL 15.
		overhead = 52
		maxFill  = 280
	)
	emit := func(n int) lsn.LSN {
		var end lsn.LSN
		require.NoError(t, primary.QueryRow(ctx, "SELECT pg_logical_emit_message(false, 'p', repeat('x', $1))::text", n).Scan(&end))
		return end
	}
	for attempt := range 20 { // background WAL (autovacuum, checkpoints) can spoil an attempt
		var pos lsn.LSN
		require.NoError(t, primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&pos))
		for uint64(pos)%block == 0 || block-uint64(pos)%block > maxFill {
			n := 0 // 56 bytes of WAL
			if block-uint64(pos)%block > 2*maxFill {
				n = 200 // 256 bytes
			}
			pos = emit(n)
		}
		end := emit(int(block - uint64(pos)%block - overhead))
		require.NoError(t, primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&insert))
		if uint64(end)%block == 0 && insert > end && insert-end <= 40 {
			return end, insert
		}
		t.Logf("attempt %d: record ended at %s, insert position %s; again", attempt, end, insert)
	}
	t.Fatal("could not end a WAL record at a page boundary")
	return 0, 0
}

// A commit whose record ends exactly at a WAL page boundary: the insert LSN
// lies past the next page's header, where replay never reports a position.
// Wait must not block until some later, unrelated record arrives.
func TestTargetAtPageBoundary(t *testing.T) {
	ctx := testCtx(t)
	c := pgcluster.ForTest(t, pgcluster.Options{})
	primary := connect(t, ctx, c.Primary.DSN())
	tr := newTracker(t, lsn.Config{DSN: c.Replicas[0].DSN()})
	_, err := tr.InRecovery(ctx) // connected: the tracker knows the WAL page size
	require.NoError(t, err)

	boundary, target := emitToPageBoundary(t, ctx, primary)
	// Non-transactional messages are flushed by the WAL writer, not at once.
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, tr.Wait(short, target), "waiting for %s (record ends at %s)", target, boundary)
	var now lsn.LSN
	require.NoError(t, primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&now))
	if now == target {
		// No later WAL exists, so Wait can only have returned on the boundary.
		assert.Equal(t, boundary, tr.Replayed())
	} else {
		t.Logf("background WAL appeared (insert position %s); replay-at-boundary not isolated", now)
	}
}
