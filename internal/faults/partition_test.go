package faults

import (
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

// Fault 2: the WAN between the regions — the write link and the WAL
// stream both cross it — is cut for 5 s, then healed. Calls fail within
// their deadline with documented errors, goroutines do not pile up, and
// everything recovers after the heal with no restart.
//
// Gossip runs on loopback outside the simulated WAN, so membership keeps
// seeing syd while its link is refused: the worst case for a caller,
// which keeps trying a node it cannot reach.
func TestWANPartition(t *testing.T) {
	e := newEnv(t, pgcluster.Options{})
	w := wan.New(pick(10*time.Millisecond, 30*time.Millisecond))
	t.Cleanup(func() { _ = w.Close() })
	repl, err := w.Proxy(e.ctx, "replication", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.c.Primary.Port())))
	require.NoError(t, err)
	require.NoError(t, e.c.Replicas[0].ReplicateFrom(e.ctx, repl))
	sydRPC := freeAddr(t)
	link, err := w.Proxy(e.ctx, "link", sydRPC)
	require.NoError(t, err)
	syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, func(c *flypg.Config) { c.RPCAddr, c.AdvertiseRPCAddr = sydRPC, link })
	lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{syd.GossipAddr()}, nil)
	e.ready(lax)
	db := e.openDB(lax, 32)

	const opTimeout = 2 * time.Second
	clients := pick(16, 64)
	l, err := checker.Start(e.ctx, checker.Config{DBs: []*checker.Target{checker.NewTarget("lax", "lax", db, lax)},
		Primary: e.primary, Clients: clients, Duration: 5 * time.Minute, OpTimeout: opTimeout})
	require.NoError(t, err)
	defer l.Stop()
	require.NoError(t, l.WaitOK(e.ctx, 200))
	underLoad := runtime.NumGoroutine()

	cutAt := l.Now()
	w.Partition()
	maxDuring := 0
	cut := pick(5*time.Second, 15*time.Second)
	tick := time.NewTicker(100 * time.Millisecond) // the cut lasts this long: the fault itself, not a wait for an event
	for range tick.C {
		maxDuring = max(maxDuring, runtime.NumGoroutine())
		if l.Now()-cutAt >= cut {
			break
		}
	}
	tick.Stop()
	healAt := l.Now()
	require.NoError(t, w.Heal())
	require.NoError(t, l.WaitOK(e.ctx, 200), "writes recover after the heal, no restart")
	rep := e.finish(l, nil)
	logFailures(t, rep)

	first, ok := rep.FirstOK(healAt, nil)
	require.True(t, ok)
	recovery := first - healAt
	t.Logf("cut %v at %v; goroutines: %d under load, at most %d during the cut; first acknowledged write %v after the heal",
		cut, cutAt.Round(time.Millisecond), underLoad, maxDuring, recovery.Round(time.Millisecond))
	assert.Less(t, recovery, 10*time.Second, "recovered by itself")
	// A pile-up grows with the cut's length; a bounded client holds a
	// bounded number of goroutines however long it retries.
	assert.LessOrEqual(t, maxDuring, underLoad+underLoad/2+4*clients, "no goroutine pile-up during the cut")

	// Failures only from the cut until the first success after it (plus
	// what was in flight then), and only documented kinds: nothing sent
	// (ErrNoPrimary), lost in flight (ErrUnknownOutcome, ErrTxGone), or
	// committed but not replayed in time — the WAL stream was cut too —
	// or the caller's own deadline.
	outside, _ := failuresOutside(rep, window{"cut", cutAt, first + opTimeout})
	assert.Empty(t, outside, "failures away from the cut")
	assertWriteOutcomes(t, rep, checker.Unknown, checker.NoPrimary, checker.TxGone, checker.AwaitTimeout, checker.Context)
	// Reads are local: the cut does not touch them — but a write holds its
	// database/sql connection until its deadline, so with a small pool a
	// read may wait past its own for a connection (a context error).
	for _, op := range rep.Failures {
		if !op.Kind.Write() {
			assert.Equal(t, checker.Context, op.Outcome, "a read failed other than waiting for a connection: %s", op.String())
		}
	}
	assert.NotZero(t, rep.Outcomes[checker.NoPrimary]+rep.Outcomes[checker.Unknown], "the cut was felt")
}
