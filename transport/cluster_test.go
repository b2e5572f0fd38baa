package transport

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cluster starts iad-1 and iad-2 (primary region, local database primary),
// lhr-1 and syd-1, all joined through iad-1.
func cluster(t *testing.T) (iad1, iad2, lhr, syd *Transport) {
	t.Helper()
	primary := func() bool { return true }
	c := testConfig("iad-1", "iad")
	c.Primary = primary
	iad1 = startNode(t, c, nil)
	c = joinTo(testConfig("iad-2", "iad"), iad1)
	c.Primary = primary
	iad2 = startNode(t, c, nil)
	lhr = startNode(t, joinTo(testConfig("lhr-1", "lhr"), iad1), nil)
	syd = startNode(t, joinTo(testConfig("syd-1", "syd"), iad1), nil)
	awaitMembers(t, []*Transport{iad1, iad2, lhr, syd}, "iad-1", "iad-2", "lhr-1", "syd-1")
	return
}

func TestMembershipAndRouting(t *testing.T) {
	iad1, _, lhr, syd := cluster(t)

	// Meta travels through gossip intact.
	m, ok := member(syd, "iad-1")
	require.True(t, ok)
	assert.Equal(t, Meta{Region: "iad", RPCAddr: iad1.RPCAddr(), Version: ProtocolVersion, MinVersion: MinProtocolVersion, Primary: true}, m.Meta)
	assert.Equal(t, iad1.GossipAddr(), m.Addr)
	m, _ = member(syd, "lhr-1")
	assert.False(t, m.Primary)

	ctx := ctxTimeout(t, waitFor)
	for _, tc := range []struct {
		name       string
		from       *Transport
		region     string
		wantPrefix []string
	}{
		{"replica to replica region", syd, "lhr", []string{"lhr-1/lhr:"}},
		{"replica to primary region", lhr, "iad", []string{"iad-1/iad:", "iad-2/iad:"}},
		{"own region runs in-process", lhr, "lhr", []string{"lhr-1/lhr:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node, resp, err := tc.from.CallRegion(ctx, tc.region, "whoami", []byte("hi"))
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(node, tc.region+"-"), node)
			assert.Contains(t, tc.wantPrefix, strings.SplitAfter(string(resp), ":")[0])
			assert.True(t, strings.HasSuffix(string(resp), ":whoami:hi"), string(resp))
		})
	}

	t.Run("CallPrimary reaches the primary region", func(t *testing.T) {
		for _, from := range []*Transport{lhr, syd} {
			node, resp, err := from.CallPrimary(ctx, "write", []byte("x"))
			require.NoError(t, err)
			assert.Contains(t, []string{"iad-1", "iad-2"}, node)
			assert.Equal(t, node+"/iad:write:x", string(resp))
		}
	})
	t.Run("CallPrimary on a primary runs locally", func(t *testing.T) {
		node, _, err := iad1.CallPrimary(ctx, "write", nil)
		require.NoError(t, err)
		assert.Equal(t, "iad-1", node)
	})
	t.Run("Call a named node", func(t *testing.T) {
		resp, err := syd.Call(ctx, "iad-1", "pinned", nil)
		require.NoError(t, err)
		assert.Equal(t, "iad-1/iad:pinned:", string(resp))
	})
	t.Run("WaitPrimary", func(t *testing.T) {
		require.NoError(t, syd.WaitPrimary(ctx))
		require.NoError(t, iad1.WaitPrimary(ctx))
	})
	t.Run("unknown region names what membership knows", func(t *testing.T) {
		_, _, err := syd.CallRegion(ctxTimeout(t, 100*time.Millisecond), "fra", "x", nil)
		require.ErrorIs(t, err, ErrNoNode)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), `"fra"`)
		assert.Contains(t, err.Error(), "iad-1 (region iad, primary)")
	})
	t.Run("unknown node", func(t *testing.T) {
		_, err := syd.Call(ctx, "nobody", "x", nil)
		require.ErrorIs(t, err, ErrNotSent)
	})
	t.Run("link RTT is measured", func(t *testing.T) {
		m, ok := member(syd, "iad-1")
		require.True(t, ok)
		assert.Positive(t, m.RTT)
	})
}

func TestKilledNodeIsRoutedAround(t *testing.T) {
	iad1, iad2, lhr, syd := cluster(t)
	ctx := ctxTimeout(t, waitFor)

	first, _, err := lhr.CallPrimary(ctx, "write", nil)
	require.NoError(t, err)
	victim, survivor := iad1, iad2
	if first == "iad-2" {
		victim, survivor = iad2, iad1
	}
	victimGossip, victimRPC := victim.GossipAddr(), victim.RPCAddr()
	victim.kill()
	killed := time.Now()

	// Callers route around it at once: its port refuses, so the request is
	// not sent and the next candidate takes it. (A call racing the kill on
	// the warm link may end in ErrUnknownOutcome; that is the honest answer
	// and the caller's to handle.)
	require.Eventually(t, func() bool {
		node, _, err := lhr.CallPrimary(ctx, "write", nil)
		return err == nil && node == survivor.Name()
	}, waitFor, 10*time.Millisecond)

	// Membership declares it dead within the suspicion timeout.
	awaitMembers(t, []*Transport{survivor, lhr, syd}, survivor.Name(), "lhr-1", "syd-1")
	t.Logf("killed node dropped from membership after %v", time.Since(killed).Round(10*time.Millisecond))

	// A new process on the same addresses, under a new name, joins and
	// serves.
	c := joinTo(testConfig("iad-3", "iad"), lhr)
	c.GossipAddr, c.RPCAddr = victimGossip, victimRPC
	c.Primary = func() bool { return true }
	iad3 := startNode(t, c, nil)
	awaitMembers(t, []*Transport{survivor, lhr, syd, iad3}, survivor.Name(), "lhr-1", "syd-1", "iad-3")
	resp, err := syd.Call(ctx, "iad-3", "hello", nil)
	require.NoError(t, err)
	assert.Equal(t, "iad-3/iad:hello:", string(resp))

	// A graceful leave is seen at once, and CallPrimary moves on.
	require.NoError(t, survivor.Close())
	awaitMembers(t, []*Transport{lhr, syd, iad3}, "lhr-1", "syd-1", "iad-3")
	node, _, err := lhr.CallPrimary(ctx, "write", nil)
	require.NoError(t, err)
	assert.Equal(t, "iad-3", node)
}

func TestPrimaryFlag(t *testing.T) {
	var isPrimary atomic.Bool
	c := testConfig("iad-1", "iad")
	c.Primary = isPrimary.Load
	a := startNode(t, c, nil)
	b := startNode(t, joinTo(testConfig("lhr-1", "lhr"), a), nil)
	awaitMembers(t, []*Transport{a, b}, "iad-1", "lhr-1")

	primaryAsSeenBy := func(tr *Transport, name string) bool {
		m, _ := member(tr, name)
		return m.Primary
	}
	isPrimary.Store(true) // picked up by polling Config.Primary
	require.Eventually(t, func() bool { return primaryAsSeenBy(b, "iad-1") }, waitFor, 10*time.Millisecond)
	isPrimary.Store(false)
	require.Eventually(t, func() bool { return !primaryAsSeenBy(b, "iad-1") }, waitFor, 10*time.Millisecond)

	b.SetPrimary(true) // and set directly
	require.Eventually(t, func() bool { return primaryAsSeenBy(a, "lhr-1") }, waitFor, 10*time.Millisecond)
	node, _, err := a.CallPrimary(ctxTimeout(t, waitFor), "x", nil)
	require.NoError(t, err)
	assert.Equal(t, "lhr-1", node, "a member advertising Primary wins over the primary region")
}

func TestIsolation(t *testing.T) {
	a := startNode(t, testConfig("a", "iad"), nil)
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"different label", func(c *Config) { c.Label = "other-app" }},
		{"different secret", func(c *Config) { c.Secret = []byte(newSecret()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig("b", "lhr")
			tc.mutate(&c)
			b := startNode(t, c, nil)
			n, err := b.ml.Join([]string{a.GossipAddr()})
			require.Error(t, err)
			assert.Zero(t, n)
			assert.Len(t, a.Members(), 1)
		})
	}
}

func TestJoinDNS(t *testing.T) {
	a := startNode(t, testConfig("a", "iad"), nil)
	_, port, _ := strings.Cut(a.GossipAddr(), ":")
	c := testConfig("b", "lhr")
	c.JoinDNS = "localhost:" + port
	b := startNode(t, c, nil)
	awaitMembers(t, []*Transport{a, b}, "a", "b")
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no secret", func(c *Config) { c.Secret = nil }, "Secret is required"},
		{"weak secret", func(c *Config) { c.Secret = []byte("correct horse battery staple") }, "openssl rand -base64 32"},
		{"weak previous secret", func(c *Config) { c.PreviousSecrets = [][]byte{[]byte("hunter2")} }, "PreviousSecrets[0]"},
		{"too many previous secrets", func(c *Config) {
			c.PreviousSecrets = [][]byte{[]byte(newSecret()), []byte(newSecret()), []byte(newSecret()), []byte(newSecret())}
		}, "at most 3"},
		{"unknown protocol version", func(c *Config) { c.MaxProtocolVersion = ProtocolVersion + 1 }, "protocol versions"},
		{"tiny frames", func(c *Config) { c.MaxFrameSize = 100 }, "MaxFrameSize"},
		{"unknown profile", func(c *Config) { c.Profile = "mars" }, "unknown Profile"},
		{"meta too large", func(c *Config) { c.Region = strings.Repeat("x", 600) }, "limit"},
		{"idle below keepalive", func(c *Config) { c.KeepAlive, c.IdleTimeout = time.Second, time.Second }, "IdleTimeout"},
		{"bad gossip address", func(c *Config) { c.GossipAddr = "nonsense" }, "gossip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig("a", "iad")
			tc.mutate(&c)
			_, err := Start(context.Background(), c, whoAmI("a", "iad"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBackoff(t *testing.T) {
	tr := &Transport{cfg: Config{BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second}}
	for failures, nominal := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 10: 2 * time.Second, 100: 2 * time.Second} {
		for range 20 {
			d := tr.backoff(failures)
			assert.GreaterOrEqual(t, d, nominal/2)
			assert.LessOrEqual(t, d, nominal)
		}
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{ErrNotSent, ErrUnknownOutcome, ErrNoPrimary, ErrNoNode, ErrClosed, ErrFrameTooLarge, ErrAuth, ErrIncompatible, ErrDecline, ErrWeakSecret}
	for i, a := range all {
		for j, b := range all {
			assert.Equal(t, i == j, errors.Is(a, b))
		}
	}
}

// TestReplacedSeedIsRejoined: the lab's layout, and any FLYPG_JOIN list
// naming one seed: b and c joined a, which has no join list. a is replaced
// (a new process at the same address). b and c still have each other, so
// they are not alone — and used to rejoin only when alone: the new a stayed
// apart for good, and writes from b's and c's regions found no primary.
// Join targets that are no live member are now contacted too.
func TestReplacedSeedIsRejoined(t *testing.T) {
	a := startNode(t, testConfig("a-1", "iad"), nil)
	seed := a.GossipAddr()
	b := startNode(t, joinTo(testConfig("b-1", "lhr"), a), nil)
	c := startNode(t, joinTo(testConfig("c-1", "syd"), a), nil)
	awaitMembers(t, []*Transport{a, b, c}, "a-1", "b-1", "c-1")

	require.NoError(t, a.Close())
	awaitMembers(t, []*Transport{b, c}, "b-1", "c-1")
	cfg := testConfig("a-2", "iad")
	cfg.GossipAddr = seed
	a2 := startNode(t, cfg, nil)
	awaitMembers(t, []*Transport{a2, b, c}, "a-2", "b-1", "c-1")
	_, err := b.Call(ctxTimeout(t, waitFor), "a-2", "after the replacement", nil)
	require.NoError(t, err)
}
