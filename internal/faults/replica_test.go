package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
	"github.com/flypg/flypg/internal/pgcluster"
)

// Fault 4: lax's local replica stops, then starts again. Meanwhile reads
// go to the primary through the link and writes keep committing (each an
// *AwaitError: committed, but there is nothing local to await); once it
// is back, both return to normal by themselves.
func TestLocalReplicaRestart(t *testing.T) {
	e := newEnv(t, pgcluster.Options{})
	syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, nil)
	lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{syd.GossipAddr()}, func(c *flypg.Config) {
		c.RoleCheckInterval = 500 * time.Millisecond
	})
	e.ready(lax)
	const conns = 32
	db := e.openDB(lax, conns)
	target := checker.NewTarget("lax", "lax", db, lax)

	const opTimeout = 3 * time.Second
	l, err := checker.Start(e.ctx, checker.Config{DBs: []*checker.Target{target}, Primary: e.primary,
		Clients: pick(8, 32), Duration: 5 * time.Minute, OpTimeout: opTimeout})
	require.NoError(t, err)
	defer l.Stop()
	require.NoError(t, l.WaitOK(e.ctx, 100))

	stoppedAt := l.Now()
	require.NoError(t, e.c.Replicas[0].Stop())
	st0 := lax.Stats()
	// The outage: writes commit (as *AwaitError) and reads are served by
	// the primary.
	require.NoError(t, l.WaitCommitted(e.ctx, int64(pick(200, 2000))), "writes keep committing with the replica down")
	st1 := lax.Stats()
	assert.Greater(t, st1.PrimaryReads, st0.PrimaryReads, "reads go to the primary")
	startAt := l.Now()
	require.NoError(t, e.c.Replicas[0].Start(e.ctx))
	require.NoError(t, l.WaitOK(e.ctx, 100), "writes are awaited again")
	st2 := lax.Stats()
	require.NoError(t, l.WaitOK(e.ctx, 100))
	st3 := lax.Stats()
	rep := e.finish(l, nil)
	logFailures(t, rep)

	// The outage, from the first write that found the replica gone.
	noticed, ok := rep.FirstCommitted(stoppedAt, func(op *checker.Op) bool { return op.Outcome == checker.AwaitTimeout })
	require.True(t, ok, "a write found the replica gone")
	outage := rep.Filter(func(op *checker.Op) bool { return op.Start > noticed && op.End < startAt })
	var outageReads, outageWrites, broken int
	var roTxAwait []string
	for _, op := range outage {
		if op.Kind.Write() {
			outageWrites++
			if assert.Contains(t, []checker.Outcome{checker.AwaitTimeout}, op.Outcome, "a write during the outage: %s", op.String()) {
				assert.True(t, strings.Contains(op.Err, flypg.ErrLocalUnavailable.Error()), "the reason is the local database: %s", op.Err)
			}
		} else {
			outageReads++
			if op.Kind == checker.OpReadTx && op.Outcome == checker.AwaitTimeout {
				roTxAwait = append(roTxAwait, op.String())
				continue
			}
			if op.Outcome == checker.PgError && strings.Contains(op.Err, "57P01") {
				broken++ // a pooled connection the shutdown terminated, found as it is reused
				continue
			}
			assert.Equal(t, checker.OK, op.Outcome, "a read during the outage is served by the primary: %s", op.String())
		}
	}
	knownBug(t, "a read-only transaction run on the primary while the local replica is down fails its Commit with *AwaitError", roTxAwait)
	assert.NotZero(t, outageReads)
	assert.LessOrEqual(t, broken, conns, "at most one read fails per pooled connection the shutdown terminated")
	assert.NotZero(t, outageWrites)
	assert.Greater(t, st3.Local, st2.Local, "reads are back on the local replica")

	backOK, ok := rep.FirstOK(startAt, nil)
	require.True(t, ok)
	firstCommitted, _ := rep.FirstCommitted(stoppedAt, nil)
	t.Logf("replica stopped at %v: first committed write %v later; restarted at %v: first awaited write %v later; %d reads on the primary",
		stoppedAt.Round(time.Millisecond), (firstCommitted - stoppedAt).Round(time.Millisecond), startAt.Round(time.Millisecond),
		(backOK - startAt).Round(time.Millisecond), st1.PrimaryReads-st0.PrimaryReads)

	// Reads and writes fail, if at all, only as the replica goes away and
	// comes back (connections to it break mid-use); writes only with
	// documented outcomes.
	outside, _ := failuresOutside(rep, window{"outage", stoppedAt, backOK + opTimeout})
	assert.Empty(t, outside, "failures away from the outage")
	assertWriteOutcomes(t, rep, checker.AwaitTimeout, checker.Unknown, checker.Context)
}
