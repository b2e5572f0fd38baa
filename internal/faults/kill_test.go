package faults

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/checker"
	"github.com/flypg/flypg/internal/pgcluster"
)

// Fault 1: the primary-region node that serves lax's writes is SIGKILLed
// mid-load — a real OS process, no goodbye — while a second primary-region
// node runs. Calls in flight end promptly with ErrUnknownOutcome or a
// definite error, new writes go to the survivor, and nothing is applied
// twice or lost.
func TestPrimaryNodeKilled(t *testing.T) {
	e := newEnv(t, pgcluster.Options{})
	syd1 := e.spawn(childSpec{Region: "syd", DSN: e.c.Primary.DSN(), Name: "syd-1"})
	syd2 := e.spawn(childSpec{Region: "syd", DSN: e.c.Primary.DSN(), Name: "syd-2", Join: []string{syd1.ready.Gossip}})
	lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{syd1.ready.Gossip}, nil)
	e.ready(lax)
	e.waitMember(lax, "syd-1", true, 10*time.Second)
	e.waitMember(lax, "syd-2", true, 10*time.Second)
	db := e.openDB(lax, 32)

	const opTimeout = 3 * time.Second
	target := checker.NewTarget("lax", "lax", db, lax)
	l, err := checker.Start(e.ctx, checker.Config{DBs: []*checker.Target{target}, Primary: e.primary,
		Clients: pick(16, 64), Duration: 5 * time.Minute, OpTimeout: opTimeout})
	require.NoError(t, err)
	defer l.Stop()
	require.NoError(t, l.WaitOK(e.ctx, pick[int64](100, 2000)))

	victim, survivor := syd1, syd2
	if e.whoami(lax) == "syd-2" {
		victim, survivor = syd2, syd1
	}
	killAt := l.Now()
	victim.kill()
	t.Logf("SIGKILLed %s at %v", victim.name, killAt.Round(time.Millisecond))
	require.NoError(t, l.WaitOK(e.ctx, pick[int64](100, 2000)), "writes go on, through the survivor")
	assert.Equal(t, survivor.name, e.whoami(lax), "the survivor serves")
	rep := e.finish(l, nil)
	logFailures(t, rep)

	first, ok := rep.FirstOK(killAt, nil)
	require.True(t, ok)
	t.Logf("first write acknowledged after the kill: %v after it", (first - killAt).Round(time.Millisecond))

	// In flight at the kill: each ended promptly, not at its deadline.
	const prompt = 2 * time.Second
	inFlight := rep.Filter(func(op *checker.Op) bool { return op.Start < killAt && op.End > killAt })
	require.NotEmpty(t, inFlight, "the kill hit calls in flight")
	var latest time.Duration
	for _, op := range inFlight {
		assert.Less(t, op.End-killAt, prompt, "ended promptly after the kill: %s", op.String())
		latest = max(latest, op.End-killAt)
	}
	t.Logf("%d calls in flight at the kill, all ended within %v of it", len(inFlight), latest.Round(time.Millisecond))
	// Errors only around the kill, and only of the documented kinds.
	outside, _ := failuresOutside(rep, window{"kill", killAt, killAt + prompt})
	assert.Empty(t, outside, "failures away from the kill")
	assertWriteOutcomes(t, rep, checker.Unknown, checker.TxGone, checker.NoPrimary)
}
