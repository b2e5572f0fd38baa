package faults

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
	"github.com/flypg/flypg/internal/pgcluster"
)

// Fault 7: a member is wrongly declared dead while its link is healthy.
// Its remote transactions must not be aborted and its calls not refused.
//
// First as gossip loss: each node's membership traffic (UDP probes and
// gossip, TCP push/pull) passes a proxy that drops it all, while the write
// link, on its own port, is untouched. lax and syd each declare the other
// dead; lax's remote transaction on syd commits, new ones begin, writes
// flow; the cut heals and membership rejoins by itself.
//
// Then as a stall: a node frozen (SIGSTOP) just long enough for membership,
// which probes every 300 ms here, to declare it dead — but not for the
// link, whose keep-alives allow 5 s of silence, to give up — then thawed
// (SIGCONT), as after a GC pause or a stalled VM; once from the caller's
// side (lax declares the server syd dead), once from the server's (syd
// declares lax, whose transaction it holds, dead).
func TestGossipLoss(t *testing.T) {
	t.Run("gossip cut, link healthy", func(t *testing.T) {
		e := newEnv(t, pgcluster.Options{})
		require.NoError(t, e.c.Primary.Exec(e.ctx, "CREATE TABLE held (v text)"))
		require.NoError(t, e.c.Sync(e.ctx))
		sydAddr, laxAddr := freeGossipAddr(t), freeGossipAddr(t)
		sydGossip, laxGossip := newGossipProxy(t, sydAddr), newGossipProxy(t, laxAddr)
		syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, func(c *flypg.Config) {
			c.GossipAddr, c.AdvertiseGossipAddr = sydAddr, sydGossip.addr
		})
		lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{sydGossip.addr}, func(c *flypg.Config) {
			c.GossipAddr, c.AdvertiseGossipAddr = laxAddr, laxGossip.addr
		})
		e.ready(lax)
		e.waitMember(lax, "syd-1", true, 10*time.Second)
		e.waitMember(syd, "lax-1", true, 10*time.Second)
		db := e.openDB(lax, 32)
		l, err := checker.Start(e.ctx, checker.Config{DBs: []*checker.Target{checker.NewTarget("lax", "lax", db, lax)},
			Primary: e.primary, Clients: pick(8, 32), Duration: 5 * time.Minute, OpTimeout: 5 * time.Second})
		require.NoError(t, err)
		defer l.Stop()
		require.NoError(t, l.WaitOK(e.ctx, 50))
		tx, err := db.BeginTx(e.ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(e.ctx, "INSERT INTO held (v) VALUES ('a')")
		require.NoError(t, err)

		cutAt := l.Now()
		sydGossip.setCut(true)
		laxGossip.setCut(true)
		e.waitMember(lax, "syd-1", false, 10*time.Second)
		e.waitMember(syd, "lax-1", false, 10*time.Second)
		t.Logf("gossip cut at %v; both declared the other dead %v later", cutAt.Round(time.Millisecond), (l.Now() - cutAt).Round(time.Millisecond))
		assert.GreaterOrEqual(t, syd.Stats().RemoteTx, 1, "syd still holds lax's remote transaction")
		require.NoError(t, tx.Commit(), "the remote transaction begun before the cut commits")
		require.NoError(t, l.WaitOK(e.ctx, pick[int64](100, 1000)), "writes go on through the link")
		tx, err = db.BeginTx(e.ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(e.ctx, "INSERT INTO held (v) VALUES ('b')")
		require.NoError(t, err)
		require.NoError(t, tx.Commit(), "a new remote transaction on the node declared dead")

		healAt := l.Now()
		sydGossip.setCut(false)
		laxGossip.setCut(false)
		e.waitMember(lax, "syd-1", true, 20*time.Second)
		e.waitMember(syd, "lax-1", true, 20*time.Second)
		t.Logf("membership healed by itself %v after the heal", (l.Now() - healAt).Round(time.Millisecond))
		require.NoError(t, l.WaitOK(e.ctx, 50))
		rep := e.finish(l, nil)
		logFailures(t, rep)
		assert.Empty(t, rep.Failures, "nothing refused or aborted")
		var n int
		require.NoError(t, e.primary.QueryRowContext(e.ctx, "SELECT count(*) FROM held").Scan(&n))
		assert.Equal(t, 2, n)
	})

	t.Run("stall: caller declares server dead", func(t *testing.T) {
		e := newEnv(t, pgcluster.Options{})
		require.NoError(t, e.c.Primary.Exec(e.ctx, "CREATE TABLE held (v text)"))
		require.NoError(t, e.c.Sync(e.ctx))
		syd := e.spawn(childSpec{Region: "syd", DSN: e.c.Primary.DSN(), Name: "syd-1"})
		lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{syd.ready.Gossip}, nil)
		e.ready(lax)
		db := e.openDB(lax, 32)
		const opTimeout = 10 * time.Second
		l, err := checker.Start(e.ctx, checker.Config{DBs: []*checker.Target{checker.NewTarget("lax", "lax", db, lax)},
			Primary: e.primary, Clients: pick(8, 32), Duration: 5 * time.Minute, OpTimeout: opTimeout})
		require.NoError(t, err)
		defer l.Stop()
		require.NoError(t, l.WaitOK(e.ctx, 50))

		tx, err := db.BeginTx(e.ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(e.ctx, "INSERT INTO held (v) VALUES ('a')")
		require.NoError(t, err)

		pausedAt := l.Now()
		syd.pause()
		e.waitMember(lax, "syd-1", false, 4*time.Second)
		deadAt := l.Now()
		syd.resume()
		resumedAt := l.Now()
		t.Logf("syd frozen at %v, declared dead by lax %v later, thawed", pausedAt.Round(time.Millisecond), (deadAt - pausedAt).Round(time.Millisecond))

		require.NoError(t, tx.Commit(), "the remote transaction on the node declared dead commits")
		require.NoError(t, l.WaitOK(e.ctx, 50), "writes go on")
		e.waitMember(lax, "syd-1", true, 10*time.Second)
		t.Logf("syd back in lax's membership %v after the thaw", (l.Now() - resumedAt).Round(time.Millisecond))
		require.NoError(t, l.WaitOK(e.ctx, 50))
		rep := e.finish(l, nil)
		logFailures(t, rep)
		assert.Empty(t, rep.Failures, "nothing refused or aborted: every call waited out the stall")
		var n int
		require.NoError(t, e.primary.QueryRowContext(e.ctx, "SELECT count(*) FROM held WHERE v = 'a'").Scan(&n))
		assert.Equal(t, 1, n)
	})

	t.Run("stall: server declares caller dead", func(t *testing.T) {
		e := newEnv(t, pgcluster.Options{})
		require.NoError(t, e.c.Primary.Exec(e.ctx, "CREATE TABLE held (v text)"))
		require.NoError(t, e.c.Sync(e.ctx))
		syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, nil)
		lax := e.spawn(childSpec{Region: "lax", DSN: e.c.Replicas[0].DSN(), Name: "lax-1", Join: []string{syd.GossipAddr()},
			HoldTx: "b", Checker: &childChecker{PrimaryDSN: e.c.Primary.DSN(), Clients: pick(8, 32),
				Duration: pick(6*time.Second, 30*time.Second), OpTimeout: 10 * time.Second}})
		_, err := lax.next(e.ctx, "tx-open", 30*time.Second)
		require.NoError(t, err)
		_, err = lax.next(e.ctx, "checking", 30*time.Second)
		require.NoError(t, err)
		e.waitMember(syd, "lax-1", true, 10*time.Second)

		start := time.Now()
		lax.pause()
		e.waitMember(syd, "lax-1", false, 4*time.Second)
		dead := time.Since(start)
		lax.resume()
		t.Logf("lax frozen, declared dead by syd %v later, thawed", dead.Round(time.Millisecond))
		assert.GreaterOrEqual(t, syd.Stats().RemoteTx, 1, "syd still holds lax's remote transaction")

		lax.send("commit")
		ev, err := lax.next(e.ctx, "tx-done", 30*time.Second)
		require.NoError(t, err)
		assert.Empty(t, ev.Err, "the remote transaction of the node declared dead commits")
		ev, err = lax.next(context.WithoutCancel(e.ctx), "report", 2*time.Minute)
		require.NoError(t, err)
		require.Empty(t, ev.Err)
		rep := ev.Report
		require.NotNil(t, rep)
		t.Logf("checker in lax: %s", rep.Summary())
		require.NoError(t, rep.Err())
		assert.Empty(t, rep.Failures, "lax's calls were not refused")
		var n int
		require.NoError(t, e.primary.QueryRowContext(e.ctx, "SELECT count(*) FROM held WHERE v = 'b'").Scan(&n))
		assert.Equal(t, 1, n)
	})
}
