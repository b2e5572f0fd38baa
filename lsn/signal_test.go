package lsn_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
	"github.com/flypg/flypg/lsn"
)

// throughWAN starts a cluster whose replica streams from the primary through
// a WAN proxy of the given round-trip time, so that a commit's WAL is still
// in flight when Wait starts, as for a write forwarded from another region.
func throughWAN(t *testing.T, ctx context.Context, rtt time.Duration) (*pgcluster.Cluster, *pgx.Conn) {
	w := wan.New(rtt)
	// Registered before the cluster, so it runs after the cluster stopped.
	t.Cleanup(func() { assert.NoError(t, w.Close()) })
	c, primary := setup(t, ctx)
	addr, err := w.Proxy(ctx, "primary", fmt.Sprintf("127.0.0.1:%d", c.Primary.Port()))
	require.NoError(t, err)
	require.NoError(t, c.Replicas[0].ReplicateFrom(ctx, addr))
	return c, primary
}

// signalSenders counts the walsenders serving a tracker's signal on s.
func signalSenders(t *testing.T, ctx context.Context, s *pgcluster.Server) int {
	n, err := s.QueryString(ctx, "SELECT count(*)::text FROM pg_stat_replication WHERE application_name = $1",
		lsn.DefaultApplicationName+lsn.SignalApplicationNameSuffix)
	require.NoError(t, err)
	v, err := strconv.Atoi(n)
	require.NoError(t, err)
	return v
}

// The WAL-arrival signal replaces most polls: with the WAL in flight, the
// tracker polls when the standby has the WAL rather than on a timer. Both
// modes run in the same test against the same replica, one after the other.
func TestSignalWakesWithFewerPolls(t *testing.T) {
	ctx := testCtx(t)
	c, primary := throughWAN(t, ctx, 20*time.Millisecond)
	replica := c.Replicas[0]

	run := func(cfg lsn.Config) lsn.Stats {
		cfg.DSN = replica.DSN()
		tr := newTracker(t, cfg)
		require.NoError(t, tr.Wait(ctx, commit(t, ctx, primary, "INSERT INTO t SELECT coalesce(max(id), 0) + 1 FROM t")), "warm up")
		before := tr.Stats()
		const n = 30
		for range n {
			target := commit(t, ctx, primary, "INSERT INTO t SELECT max(id) + 1 FROM t")
			require.Greater(t, target, tr.Replayed(), "the WAL is still in flight when Wait starts")
			require.NoError(t, tr.Wait(ctx, target))
		}
		after := tr.Stats()
		after.Waits -= before.Waits
		after.Immediate -= before.Immediate
		after.Polls -= before.Polls
		after.SignalWakeups -= before.SignalWakeups
		return after
	}
	polled := run(lsn.Config{DisableWALSignal: true})
	signalled := run(lsn.Config{})
	t.Logf("polls per wait: %.2f polling, %.2f with the signal (%d signal wake-ups of %d waits)",
		polled.PollsPerWait(), signalled.PollsPerWait(), signalled.SignalWakeups, signalled.Waits)

	assert.Equal(t, "poll", polled.Mode)
	assert.Zero(t, polled.SignalWakeups)
	assert.False(t, polled.SignalActive)
	assert.Equal(t, "signal", signalled.Mode)
	assert.True(t, signalled.SignalActive, "still lingering right after the last wait")
	assert.GreaterOrEqual(t, signalled.SignalWakeups, signalled.Waits/2, "most waits ended by a signal-triggered poll")
	assert.Less(t, signalled.PollsPerWait(), polled.PollsPerWait())
}

// The signal's replication connection opens with the first waiter and
// closes WALSignalLinger after the last; the idle tracker queries nothing.
func TestSignalLingersThenCloses(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN(), WALSignalLinger: 300 * time.Millisecond})
	require.Zero(t, signalSenders(t, ctx, replica), "nothing before the first wait")

	// A waiter that stays until the signal streams.
	require.NoError(t, replica.PauseReplay(ctx))
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")
	done := make(chan error, 1)
	go func() { done <- tr.Wait(ctx, target) }()
	require.Eventually(t, func() bool { return tr.Stats().SignalActive }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 1, signalSenders(t, ctx, replica))
	require.NoError(t, replica.ResumeReplay(ctx))
	require.NoError(t, <-done)

	polls := tr.Stats().Polls
	require.Eventually(t, func() bool { return !tr.Stats().SignalActive }, 10*time.Second, time.Millisecond, "closed after the linger")
	require.Eventually(t, func() bool { return signalSenders(t, ctx, replica) == 0 }, 10*time.Second, 5*time.Millisecond,
		"the walsender is gone")
	assert.Equal(t, polls, tr.Stats().Polls, "no polls while idle")
	assert.Equal(t, uint64(1), tr.Stats().SignalConnects)
	assert.Zero(t, tr.Stats().SignalFailures)
}

// A role without the REPLICATION attribute cannot open the signal: the
// tracker says so in Stats and polls instead; waits still work.
func TestSignalFallsBackWithoutReplicationPrivilege(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	_, err := primary.Exec(ctx, "CREATE ROLE app LOGIN NOREPLICATION")
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx))
	dsn := strings.Replace(c.Replicas[0].DSN(), "postgres://postgres@", "postgres://app@", 1)
	tr := newTracker(t, lsn.Config{DSN: dsn})

	require.NoError(t, c.Replicas[0].PauseReplay(ctx))
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")
	done := make(chan error, 1)
	go func() { done <- tr.Wait(ctx, target) }()
	require.Eventually(t, func() bool { return tr.Stats().SignalFailures > 0 }, 10*time.Second, time.Millisecond,
		"the signal was tried and refused")
	s := tr.Stats()
	assert.False(t, s.SignalActive)
	assert.Equal(t, "poll", s.Mode)
	require.NoError(t, c.Replicas[0].ResumeReplay(ctx))
	require.NoError(t, <-done, "polling still serves the wait")
	for i := range 20 {
		require.NoError(t, tr.Wait(ctx, commit(t, ctx, primary, "INSERT INTO t VALUES ($1)", 2+i)))
	}
	assert.Zero(t, tr.Stats().SignalConnects)
	assert.Zero(t, tr.Stats().SignalWakeups)
}

// A standby promoted under waiters becomes a primary: the waiters are
// released (there is nothing left to wait for) and the signal closes.
func TestPromotionReleasesWaiters(t *testing.T) {
	ctx := testCtx(t)
	c, _ := setup(t, ctx)
	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN(), WALSignalLinger: time.Minute})

	never := lsn.LSN(0xFFFF_00000000) // no replay will reach it
	results := make(chan error, 3)
	for range cap(results) {
		go func() { results <- tr.Wait(ctx, never) }()
	}
	require.Eventually(t, waiters(tr, cap(results)), 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return tr.Stats().SignalActive }, 10*time.Second, time.Millisecond)

	require.NoError(t, replica.Promote(ctx))
	// Released at once, but not as replayed: the promoted database will
	// never replay a position past its promotion — the old primary's
	// timeline (a write that committed there after it is not here).
	for range cap(results) {
		assert.ErrorIs(t, <-results, lsn.ErrPromoted)
	}
	inRecovery, err := tr.InRecovery(ctx)
	require.NoError(t, err)
	assert.False(t, inRecovery)
	assert.Equal(t, "primary", tr.Stats().Mode)
	assert.ErrorIs(t, tr.Wait(ctx, never), lsn.ErrPromoted, "past the promotion: never replayed here")
	require.NoError(t, tr.Wait(ctx, tr.Replayed()), "replayed before the promotion")
	require.NoError(t, tr.Wait(ctx, 1), "replayed before the promotion")
	require.Eventually(t, func() bool { return !tr.Stats().SignalActive }, 10*time.Second, time.Millisecond,
		"no signal on a primary")
}

// The standby follows a promotion elsewhere onto a new timeline: the
// signal's stream of the old timeline ends, the tracker streams the new
// one, and waits for the new primary's commits work throughout.
func TestSignalFollowsTimelineSwitch(t *testing.T) {
	ctx := testCtx(t)
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 2})
	r1, r2 := c.Replicas[0], c.Replicas[1]
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY)"))
	require.NoError(t, c.Sync(ctx))
	tr := newTracker(t, lsn.Config{DSN: r1.DSN(), WALSignalLinger: time.Minute})
	require.NoError(t, c.Primary.Exec(ctx, "INSERT INTO t VALUES (0)"))
	pos, err := c.Primary.QueryString(ctx, "SELECT pg_current_wal_insert_lsn()::text")
	require.NoError(t, err)
	target, err := lsn.Parse(pos)
	require.NoError(t, err)
	require.NoError(t, tr.Wait(ctx, target))
	require.Eventually(t, func() bool { return tr.Stats().SignalActive }, 10*time.Second, time.Millisecond)

	// The old primary goes away; r2 takes over on timeline 2; r1 follows it.
	require.NoError(t, c.Sync(ctx))
	require.NoError(t, c.Primary.Stop())
	require.NoError(t, r2.Promote(ctx))
	require.NoError(t, r1.ReplicateFrom(ctx, fmt.Sprintf("127.0.0.1:%d", r2.Port())))

	newPrimary := connect(t, ctx, r2.DSN())
	for i := range 20 {
		require.NoError(t, tr.Wait(ctx, commit(t, ctx, newPrimary, "INSERT INTO t VALUES ($1)", 1+i)))
	}
	tl, err := r1.QueryString(ctx, "SELECT received_tli::text FROM pg_stat_wal_receiver")
	require.NoError(t, err)
	require.Equal(t, "2", tl, "r1 is on the new timeline")
	require.Eventually(t, func() bool {
		s := tr.Stats()
		return s.SignalActive && s.SignalConnects >= 2
	}, 30*time.Second, time.Millisecond, "the signal streams the new timeline")
	s := tr.Stats()
	assert.Positive(t, s.SignalFailures, "the old timeline's stream ended")
	assert.Equal(t, "signal", s.Mode)
	n, err := r1.QueryString(ctx, "SELECT count(*)::text FROM t")
	require.NoError(t, err)
	assert.Equal(t, "21", n)
}

// The standby stops and starts again: meanwhile Wait fails by its own
// deadline; afterwards the same tracker serves waits again, and its signal
// comes back by itself.
func TestReplicaStopStartRecovers(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN(), MaxReconnectDelay: 100 * time.Millisecond, WALSignalLinger: time.Minute})
	require.NoError(t, tr.Wait(ctx, commit(t, ctx, primary, "INSERT INTO t VALUES (0)")))
	require.Eventually(t, func() bool { return tr.Stats().SignalActive }, 10*time.Second, time.Millisecond)

	require.NoError(t, replica.Stop())
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := tr.Wait(short, target)
	var we *lsn.WaitError
	require.ErrorAs(t, err, &we, "the replica is down: Wait ends with its context")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, replica.Restart(ctx))
	require.NoError(t, tr.Wait(ctx, target), "the same tracker, after the restart")
	// Keep a waiter pending until the signal is back (it retries with
	// backoff while someone waits).
	pending, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = tr.Wait(pending, lsn.LSN(0xFFFF_00000000)) }()
	require.Eventually(t, func() bool {
		s := tr.Stats()
		return s.SignalActive && s.SignalConnects >= 2
	}, 30*time.Second, 5*time.Millisecond, "the signal reconnected")
	stop()
	require.NoError(t, tr.Wait(ctx, commit(t, ctx, primary, "INSERT INTO t VALUES (2)")))
	s := tr.Stats()
	assert.Positive(t, s.Reconnects)
	assert.Positive(t, s.SignalFailures)
}

// Refresh queries the role now, where InRecovery answers from the last
// observation: after a promotion with no waiter, only Refresh knows.
func TestRefreshQueriesTheRole(t *testing.T) {
	ctx := testCtx(t)
	c, primary := setup(t, ctx)
	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN()})

	rec, err := tr.Refresh(ctx)
	require.NoError(t, err, "Refresh connects when needed")
	assert.True(t, rec)
	assert.Positive(t, tr.Replayed(), "and observes replay")
	target := commit(t, ctx, primary, "INSERT INTO t VALUES (1)")
	require.NoError(t, c.Sync(ctx))
	rec, err = tr.Refresh(ctx)
	require.NoError(t, err)
	assert.True(t, rec)
	assert.GreaterOrEqual(t, tr.Replayed()+40, target, "Refresh observed the replay")
	polls := tr.Stats().Polls
	require.NoError(t, tr.Wait(ctx, target))
	assert.Equal(t, polls, tr.Stats().Polls, "a Wait after Refresh's observation needs no query")

	require.NoError(t, replica.Promote(ctx))
	cached, err := tr.InRecovery(ctx)
	require.NoError(t, err)
	assert.True(t, cached, "InRecovery is the last observation: no query")
	rec, err = tr.Refresh(ctx)
	require.NoError(t, err)
	assert.False(t, rec, "Refresh sees the promotion")
	cached, err = tr.InRecovery(ctx)
	require.NoError(t, err)
	assert.False(t, cached, "and InRecovery now answers from it")
	assert.Equal(t, uint64(3), tr.Stats().Refreshes)

	onPrimary := newTracker(t, lsn.Config{DSN: c.Primary.DSN()})
	rec, err = onPrimary.Refresh(ctx)
	require.NoError(t, err)
	assert.False(t, rec)
	assert.Zero(t, onPrimary.Stats().Polls)

	require.NoError(t, tr.Close())
	_, err = tr.Refresh(ctx)
	assert.ErrorIs(t, err, lsn.ErrClosed)
}

// A primary that went through crash recovery reports where that recovery
// ended, as a promoted standby does; a tracker that has only known it as
// a primary must not take that for a promotion: waits return at once.
func TestCrashRecoveredPrimaryIsNoPromotion(t *testing.T) {
	ctx := testCtx(t)
	c, _ := setup(t, ctx)
	require.NoError(t, c.Primary.Crash())
	require.NoError(t, c.Primary.Start(ctx))
	tr := newTracker(t, lsn.Config{DSN: c.Primary.DSN()})
	never := lsn.LSN(0xFFFF_00000000)
	require.NoError(t, tr.Wait(ctx, never), "a primary has nothing to wait for")
}

// After a promotion, the tracker knows the database only as a primary
// until it observes it again: rebuilt as a standby (here: restarted with
// standby.signal), Refresh learns that, and waits wait for replay again
// instead of reporting ErrPromoted.
func TestRefreshAfterPromotionWaitsAgain(t *testing.T) {
	ctx := testCtx(t)
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN()})
	never := lsn.LSN(0xFFFF_00000000)
	short := func() context.Context {
		sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		t.Cleanup(cancel)
		return sctx
	}
	var we *lsn.WaitError
	require.ErrorAs(t, tr.Wait(short(), never), &we, "a standby: the wait times out")
	require.NoError(t, replica.Promote(ctx))
	require.Eventually(t, func() bool { return errors.Is(tr.Wait(short(), never), lsn.ErrPromoted) }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, replica.Stop())
	require.NoError(t, os.WriteFile(filepath.Join(replica.DataDir(), "standby.signal"), nil, 0o644))
	require.NoError(t, replica.Start(ctx))
	assert.ErrorIs(t, tr.Wait(short(), never), lsn.ErrPromoted, "the tracker has not looked again")
	// (The first Refresh may meet the connection the restart cut; the
	// next connects anew.)
	var rec bool
	require.Eventually(t, func() bool {
		var err error
		rec, err = tr.Refresh(ctx)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.True(t, rec)
	assert.ErrorAs(t, tr.Wait(short(), never), &we, "a standby again: the wait waits")
}
