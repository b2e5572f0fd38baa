package transport

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gossipCut drops gossip between the listed IPs while it is on: a
// partition of membership alone, the link untouched.
type gossipCut struct {
	on  atomic.Bool
	ips sync.Map // IP string → true
}

func (g *gossipCut) hook(self string) func(addr string) bool {
	return func(addr string) bool {
		if !g.on.Load() {
			return false
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		_, blocked := g.ips.Load(host)
		return blocked && host != self
	}
}

// TestGossipLossKeepsHealthyLinks (fault 7): membership wrongly declares a
// node dead while the network between the two is fine. Its link stays, calls
// pinned to it by name keep working, its inbound connection (and what the
// root ties to it, like a remote transaction) is not torn down, a selector
// uses it when nothing else qualifies, and membership heals by itself.
func TestGossipLossKeepsHealthyLinks(t *testing.T) {
	cut := &gossipCut{}
	cut.ips.Store("127.0.0.2", true)
	cut.ips.Store("127.0.0.3", true)
	b := newBlocker()
	sc := testConfig("iad-1", "iad")
	sc.GossipAddr, sc.RPCAddr = "127.0.0.3:0", "127.0.0.3:0"
	sc.hooks = &hooks{dropGossip: cut.hook("127.0.0.3")}
	server := startNode(t, sc, HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		if req.Method == "tx" {
			return b.ServeRPC(ctx, req)
		}
		return []byte("ok:" + req.Method), nil
	}))
	cc := joinTo(testConfig("lhr-1", "lhr"), server)
	cc.GossipAddr, cc.RPCAddr = "127.0.0.2:0", "127.0.0.2:0"
	cc.hooks = &hooks{dropGossip: cut.hook("127.0.0.2")}
	client := startNode(t, cc, nil)
	awaitMembers(t, []*Transport{client, server}, "iad-1", "lhr-1")
	ctx := ctxTimeout(t, 30*time.Second)

	// A long request pinned to the server, as a remote transaction is.
	txDone := make(chan error, 1)
	go func() {
		_, err := client.Call(ctx, "iad-1", "tx", nil)
		txDone <- err
	}()
	tx := <-b.started
	inbound := server.snapshotInbound()
	require.Len(t, inbound, 1)

	cut.on.Store(true)
	awaitMembers(t, []*Transport{client}, "lhr-1")
	awaitMembers(t, []*Transport{server}, "iad-1")
	t.Log("membership split; the link is up")

	resp, err := client.Call(ctx, "iad-1", "pinned", nil)
	require.NoError(t, err, "a call pinned by name uses the healthy link")
	assert.Equal(t, "ok:pinned", string(resp))
	select {
	case <-tx.Conn.Done():
		t.Fatal("the inbound link (and so the remote transaction) was torn down")
	default:
	}
	node, resp, err := client.CallRegion(ctx, "iad", "selected", nil)
	require.NoError(t, err, "with nothing else, a selector uses the linked node")
	assert.Equal(t, "iad-1", node)
	assert.Equal(t, "ok:selected", string(resp))
	cands, _ := SelectRegion("iad")(client.selectable())
	require.Len(t, cands, 1)
	assert.False(t, cands[0].Alive)

	// The pinned request completes normally.
	close(b.release)
	require.NoError(t, <-txDone)

	// Membership heals by itself (the node found itself alone and
	// rejoined), on the same link.
	cut.on.Store(false)
	awaitMembers(t, []*Transport{client, server}, "iad-1", "lhr-1")
	resp, err = client.Call(ctx, "iad-1", "healed", nil)
	require.NoError(t, err)
	assert.Equal(t, "ok:healed", string(resp))
	assert.Equal(t, inbound, server.snapshotInbound(), "the same link throughout")
	m, _ := member(client, "iad-1")
	assert.True(t, m.Alive)

	// While membership calls a node dead, a link that fails is not redialled.
	cut.on.Store(true)
	awaitMembers(t, []*Transport{client}, "lhr-1")
	dropInbound(server)
	require.Eventually(t, func() bool {
		_, err := client.Call(ctx, "iad-1", "x", nil)
		return err != nil && strings.Contains(err.Error(), "not a live member")
	}, waitFor, 10*time.Millisecond)
	assert.Empty(t, server.snapshotInbound())
}

func TestRankPrefersLiveMembers(t *testing.T) {
	tr := &Transport{name: "self"}
	ms := []Member{
		{Name: "dead-fast", RTT: time.Millisecond},
		{Name: "live-unmeasured", Alive: true},
		{Name: "live-slow", RTT: 80 * time.Millisecond, Alive: true},
		{Name: "self", Alive: true},
		{Name: "live-fast", RTT: 5 * time.Millisecond, Alive: true},
	}
	tr.Rank(ms)
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{"self", "live-fast", "live-slow", "live-unmeasured", "dead-fast"}, names)
}

// TestVersionsSideBySide (fault 6): nodes speaking different protocol
// ranges link with the highest common version; a node with none in common
// is skipped as not sent.
func TestVersionsSideBySide(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		if req.Method == "stream" {
			for range 3 {
				if err := req.Send(ctx, []byte("part,")); err != nil {
					return nil, err
				}
			}
			return []byte("end"), nil
		}
		if req.Method == "big-stream" {
			if err := req.Send(ctx, make([]byte, 5<<20)); err != nil {
				return nil, err
			}
			return nil, nil
		}
		return fmt.Appendf(nil, "v%d:%d", req.Conn.Version(), len(req.Body)), nil
	})
	versions := func(lo, hi int) func(*Config) {
		return func(c *Config) { c.MinProtocolVersion, c.MaxProtocolVersion = lo, hi }
	}
	start := func(name, region string, seed *Transport, v func(*Config)) *Transport {
		c := testConfig(name, region)
		if seed != nil {
			c = joinTo(c, seed)
		}
		v(&c)
		return startNode(t, c, h)
	}
	newNode := start("new", "iad", nil, versions(MinProtocolVersion, ProtocolVersion))
	oldNode := start("old", "iad", newNode, versions(2, 2))
	newest := start("newest", "lhr", newNode, versions(3, 3))
	all := []*Transport{newNode, oldNode, newest}
	awaitMembers(t, all, "new", "old", "newest")
	ctx := ctxTimeout(t, waitFor)

	for _, tc := range []struct {
		from, to string
		want     string
	}{
		{"new", "old", "v2:1"}, {"old", "new", "v2:1"}, {"new", "newest", "v3:1"}, {"newest", "new", "v3:1"},
	} {
		from := map[string]*Transport{"new": newNode, "old": oldNode, "newest": newest}[tc.from]
		resp, err := from.Call(ctx, tc.to, "hi", []byte("x"))
		require.NoError(t, err, "%s → %s", tc.from, tc.to)
		assert.Equal(t, tc.want, string(resp), "%s → %s", tc.from, tc.to)
	}
	// Version 2 has no streams: the parts come with the final body, in one
	// frame; a body larger than a frame cannot go at all.
	resp, err := newNode.Call(ctx, "old", "stream", nil)
	require.NoError(t, err)
	assert.Equal(t, "part,part,part,end", string(resp))
	_, err = oldNode.Call(ctx, "new", "big-stream", nil)
	require.Error(t, err)
	_, err = newNode.Call(ctx, "old", "x", make([]byte, 5<<20))
	require.ErrorIs(t, err, ErrNotSent)
	require.ErrorIs(t, err, ErrFrameTooLarge)
	resp, err = newNode.Call(ctx, "newest", "x", make([]byte, 5<<20))
	require.NoError(t, err)
	assert.Equal(t, "v3:5242880", string(resp))

	// old (2–2) and newest (3–3) have nothing in common.
	_, err = oldNode.Call(ctx, "newest", "x", nil)
	require.ErrorIs(t, err, ErrNotSent)
	require.ErrorIs(t, err, ErrIncompatible)
	anyNode := func(ms []Member) ([]Member, string) {
		var out []Member
		for _, m := range ms {
			if m.Name != "old" {
				out = append(out, m)
			}
		}
		return out, "any other node"
	}
	for range 5 {
		node, _, err := oldNode.CallSelect(ctx, anyNode, ErrNoNode, "x", nil)
		require.NoError(t, err)
		assert.Equal(t, "new", node, "the incompatible node is skipped")
	}
}

// TestRotationWithoutDowntime: three nodes rotate their secret, one node
// at a time, in the three steps docs/security.md prescribes; gossip and
// links between the nodes never break.
func TestRotationWithoutDowntime(t *testing.T) {
	s1, s2 := newSecret(), newSecret()
	type node struct {
		tr   *Transport
		name string
	}
	nodes := make([]*node, 3)
	gen := 0
	start := func(i int, secret string, previous []string, seed *Transport) {
		gen++
		c := testConfig(fmt.Sprintf("n%d-%d", i, gen), "iad")
		c.Secret = []byte(secret)
		for _, p := range previous {
			c.PreviousSecrets = append(c.PreviousSecrets, []byte(p))
		}
		if seed != nil {
			c = joinTo(c, seed)
		}
		nodes[i] = &node{tr: startNode(t, c, nil), name: c.NodeName}
	}
	check := func(step string) {
		t.Helper()
		var trs []*Transport
		var names []string
		for _, n := range nodes {
			trs, names = append(trs, n.tr), append(names, n.name)
		}
		awaitMembers(t, trs, names...)
		ctx := ctxTimeout(t, waitFor)
		for _, from := range nodes {
			for _, to := range nodes {
				resp, err := from.tr.Call(ctx, to.name, "ping", nil)
				require.NoError(t, err, "%s: %s → %s", step, from.name, to.name)
				assert.Equal(t, to.name+"/iad:ping:", string(resp))
			}
		}
	}
	start(0, s1, nil, nil)
	start(1, s1, nil, nodes[0].tr)
	start(2, s1, nil, nodes[0].tr)
	check("before")
	steps := []struct {
		name     string
		secret   string
		previous []string
	}{
		{"1: accept the new secret", s1, []string{s2}},
		{"2: use the new secret, accept the old", s2, []string{s1}},
		{"3: drop the old secret", s2, nil},
	}
	for _, st := range steps {
		for i := range nodes {
			// The links between the two nodes not restarted must survive.
			restarted := nodes[i].name
			var keep []*ServerConn
			for _, n := range nodes {
				for _, sc := range n.tr.snapshotInbound() {
					if n.name != restarted && sc.peer != restarted {
						keep = append(keep, sc)
					}
				}
			}
			require.NotEmpty(t, keep)
			require.NoError(t, nodes[i].tr.Close())
			start(i, st.secret, st.previous, nodes[(i+1)%3].tr)
			check(fmt.Sprintf("step %s, node %d", st.name, i))
			for _, sc := range keep {
				select {
				case <-sc.Done():
					t.Fatalf("step %s: the link from %s broke", st.name, sc.peer)
				default:
				}
			}
		}
	}
}

// TestClusterLabel: the label reaches memberlist and travels in cleartext
// at the head of every gossip packet; two apps sharing a network never
// merge, whether their secrets differ or not.
func TestClusterLabel(t *testing.T) {
	var sawLabel, sawOther atomic.Int64
	c := testConfig("a", "iad")
	c.Label = "todo-app"
	c.hooks = &hooks{sawGossip: func(b []byte) {
		if len(b) > 2 && b[0] == 244 && bytes.Equal(b[2:2+int(b[1])], []byte("todo-app")) {
			sawLabel.Add(1)
		} else {
			sawOther.Add(1)
		}
	}}
	a := startNode(t, c, nil)
	same := joinTo(testConfig("a2", "iad"), a)
	same.Label = "todo-app"
	a2 := startNode(t, same, nil)
	awaitMembers(t, []*Transport{a, a2}, "a", "a2")
	require.Eventually(t, func() bool { return sawLabel.Load() > 0 }, waitFor, 10*time.Millisecond)
	assert.Zero(t, sawOther.Load(), "every gossip packet carries the label")

	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"same secret, other label", func(c *Config) { c.Label = "other-app" }},
		{"other secret, other label", func(c *Config) { c.Label, c.Secret = "other-app", []byte(newSecret()) }},
		{"other secret, same label", func(c *Config) { c.Label, c.Secret = "todo-app", []byte(newSecret()) }},
		{"same secret, default label", func(c *Config) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oc := testConfig("b", "lhr")
			tc.mutate(&oc)
			oc.Join = []string{a.GossipAddr()} // and it keeps trying
			b := startNode(t, oc, nil)
			n, err := b.ml.Join([]string{a.GossipAddr()})
			require.Error(t, err)
			assert.Zero(t, n)
			time.Sleep(300 * time.Millisecond) // a few join retries and gossip rounds
			assert.Len(t, b.Members(), 1)
			assert.Len(t, a.Members(), 2)
		})
	}
}

// TestIPv6Cluster: gossip, links and calls on [::1]; and a node bound to
// every address ([::]) advertises the concrete one it is given.
func TestIPv6Cluster(t *testing.T) {
	c := testConfig("iad-1", "iad")
	c.GossipAddr, c.RPCAddr = "[::1]:0", "[::1]:0"
	c.Primary = func() bool { return true }
	server := startNode(t, c, nil)
	assert.True(t, strings.HasPrefix(server.GossipAddr(), "[::1]:"), server.GossipAddr())
	assert.True(t, strings.HasPrefix(server.RPCAddr(), "[::1]:"), server.RPCAddr())

	wc := testConfig("lhr-1", "lhr")
	wc.GossipAddr, wc.RPCAddr, wc.AdvertiseGossipAddr = "[::]:0", "[::]:0", "::1"
	wc.JoinDNS = "myapp.internal"
	_, port, _ := net.SplitHostPort(server.GossipAddr())
	wc.hooks = &hooks{lookupIP: func(ctx context.Context, host string) ([]net.IP, error) {
		if host == "myapp.internal" {
			return []net.IP{net.ParseIP("::1")}, nil // an AAAA record
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}}
	// JoinDNS without a port uses our own gossip port: give the server's.
	wc.JoinDNS += ":" + port
	client := startNode(t, wc, nil)
	assert.True(t, strings.HasPrefix(client.GossipAddr(), "[::1]:"), client.GossipAddr())
	assert.True(t, strings.HasPrefix(client.RPCAddr(), "[::1]:"), client.RPCAddr())
	awaitMembers(t, []*Transport{client, server}, "iad-1", "lhr-1")
	ctx := ctxTimeout(t, waitFor)
	node, resp, err := client.CallPrimary(ctx, "write", []byte("v6"))
	require.NoError(t, err)
	assert.Equal(t, "iad-1", node)
	assert.Equal(t, "iad-1/iad:write:v6", string(resp))
	resp, err = server.Call(ctx, "lhr-1", "back", nil)
	require.NoError(t, err)
	assert.Equal(t, "lhr-1/lhr:back:", string(resp))
}

func TestAdvertiseAddressChoice(t *testing.T) {
	v6 := &net.IPNet{IP: net.ParseIP("fdaa:0:1:a7b::2"), Mask: net.CIDRMask(64, 128)}
	v4 := &net.IPNet{IP: net.ParseIP("10.0.0.5"), Mask: net.CIDRMask(8, 32)}
	ll := &net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)}
	lo := &net.IPNet{IP: net.ParseIP("::1"), Mask: net.CIDRMask(128, 128)}
	for _, tc := range []struct {
		name  string
		bound string
		env   string
		dns   []net.IP
		addrs []net.Addr
		want  string
	}{
		{"specific bind", "fdaa::9", "fdaa::1", nil, nil, "fdaa::9"},
		{"FLY_PRIVATE_IP", "::", "fdaa:0:1:a7b::7", []net.IP{net.ParseIP("fdaa::8")}, []net.Addr{v4}, "fdaa:0:1:a7b::7"},
		{"fly-local-6pn", "::", "", []net.IP{net.ParseIP("fdaa::8")}, []net.Addr{v4}, "fdaa::8"},
		{"IPv6 interface first when bound to ::", "::", "", nil, []net.Addr{lo, ll, v4, v6}, "fdaa:0:1:a7b::2"},
		{"IPv4 interface first when bound to 0.0.0.0", "0.0.0.0", "", nil, []net.Addr{lo, v6, v4}, "10.0.0.5"},
		{"the other family when that is all", "::", "", nil, []net.Addr{lo, ll, v4}, "10.0.0.5"},
		{"nothing routable", "::", "", nil, []net.Addr{lo, ll}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Transport{ctx: context.Background(), log: testLogger(), cfg: Config{hooks: &hooks{
				getenv: func(k string) string {
					if k == "FLY_PRIVATE_IP" {
						return tc.env
					}
					return ""
				},
				lookupIP: func(ctx context.Context, host string) ([]net.IP, error) {
					if host == flyLocal6PN && tc.dns != nil {
						return tc.dns, nil
					}
					return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
				},
				ifaceAddr: func() ([]net.Addr, error) { return tc.addrs, nil },
			}}}
			ip, err := tr.advertiseIP(net.ParseIP(tc.bound))
			if tc.want == "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "AdvertiseGossipAddr")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, ip.String())
		})
	}
}

// TestDefaultsBindEveryAddress: with no addresses configured, the listeners
// take the IPv6 wildcard (dual-stack), not every IPv4 interface.
func TestDefaultsBindEveryAddress(t *testing.T) {
	addr, wildcard := bindAddr("", defaultGossipPort)
	assert.Equal(t, "[::]:7946", addr)
	assert.True(t, wildcard)
	c := testConfig("v6", "iad")
	c.GossipAddr, c.RPCAddr, c.AdvertiseGossipAddr = "", "[::]:0", "::1"
	c.GossipAddr = "[::]:0"
	tr := startNode(t, c, nil)
	assert.Equal(t, net.IPv6unspecified.String(), tr.ln.Addr().(*net.TCPAddr).IP.String())
	// Dual-stack: reachable over IPv4 loopback too.
	_, port, _ := net.SplitHostPort(tr.RPCAddr())
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	require.NoError(t, err)
	_ = conn.Close()
}

// TestDatabaseRouting: members advertise the databases they serve, and a
// request for database D goes only to a node whose copy of D is primary.
func TestDatabaseRouting(t *testing.T) {
	app := DatabaseMeta{SysID: 7301, Name: "app"}
	other := DatabaseMeta{SysID: 9902, Name: "metrics"}
	c := testConfig("iad-1", "iad")
	c.Databases = []DatabaseMeta{{SysID: app.SysID, Name: app.Name, Primary: true}, other}
	a := startNode(t, c, nil)
	bc := joinTo(testConfig("fra-1", "fra"), a)
	bc.Databases = []DatabaseMeta{app, {SysID: other.SysID, Name: other.Name, Primary: true}}
	b := startNode(t, bc, nil)
	client := startNode(t, joinTo(testConfig("lhr-1", "lhr"), a), nil)
	all := []*Transport{a, b, client}
	awaitMembers(t, all, "iad-1", "fra-1", "lhr-1")
	ctx := ctxTimeout(t, waitFor)
	require.Eventually(t, func() bool {
		m, ok := member(client, "fra-1")
		return ok && len(m.Databases) == 2
	}, waitFor, 10*time.Millisecond)

	node, _, err := client.CallSelect(ctx, SelectDatabase(app.SysID, app.Name), ErrNoPrimary, "write", nil)
	require.NoError(t, err)
	assert.Equal(t, "iad-1", node)
	node, _, err = client.CallSelect(ctx, SelectDatabase(other.SysID, other.Name), ErrNoPrimary, "write", nil)
	require.NoError(t, err)
	assert.Equal(t, "fra-1", node)
	_, _, err = client.CallSelect(ctxTimeout(t, 200*time.Millisecond), SelectDatabase(1, "nowhere"), ErrNoPrimary, "write", nil)
	require.ErrorIs(t, err, ErrNoPrimary)
	require.ErrorIs(t, err, ErrNotSent)
	assert.Contains(t, err.Error(), `"nowhere"`)

	// A failover: app's primary moves to fra-1, and writes follow.
	require.NoError(t, a.SetDatabases([]DatabaseMeta{app, other}))
	require.NoError(t, b.SetDatabases([]DatabaseMeta{{SysID: app.SysID, Name: app.Name, Primary: true}, {SysID: other.SysID, Name: other.Name, Primary: true}}))
	require.Eventually(t, func() bool {
		node, _, err := client.CallSelect(ctx, SelectDatabase(app.SysID, app.Name), ErrNoPrimary, "write", nil)
		return err == nil && node == "fra-1"
	}, waitFor, 10*time.Millisecond)

	// Meta over memberlist's limit is refused, and nothing changes.
	var many []DatabaseMeta
	for i := range 40 {
		many = append(many, DatabaseMeta{SysID: uint64(i) << 50, Name: fmt.Sprintf("database_%02d", i)})
	}
	err = a.SetDatabases(many)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprint(memberlist.MetaMaxSize))
	assert.Len(t, a.mem.localMeta().Databases, 2)
}
