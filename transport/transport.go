package transport

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport is one node's membership and links. Its methods are safe for
// concurrent use.
type Transport struct {
	cfg     Config
	prof    profile
	log     *slog.Logger
	handler Handler
	name    string
	secrets []spakeSecret // Secret, then PreviousSecrets
	rng     io.Reader     // handshake randomness

	tlsServer, tlsClient *tls.Config

	ml         *memberlist.Memberlist
	mem        *membership
	ln         net.Listener
	gossipAddr string
	rpcAddr    string // as advertised

	// ctx ends when the Transport closes; background work and dials hang
	// off it. Inbound requests do not: they are drained, not cut.
	ctx     context.Context
	cancel  context.CancelFunc
	closing chan struct{} // closed when Close begins, before the drain
	wg      sync.WaitGroup

	preauth  *preAuth    // inbound connections in the handshake
	authWarn warnLimiter // failed handshakes, for rate-limited warnings
	serving  gate        // inbound requests running
	calling  gate        // outbound calls in flight
	connIDs  atomic.Uint64
	local    *ServerConn // the connection a node's calls to itself use

	bytesMu       sync.Mutex
	bytesInFlight int64            // request bytes held by the server side
	peerBytes     map[string]int64 // bytesInFlight by calling node

	mlMu sync.RWMutex // meta updates (R) vs Close tearing memberlist down (W)

	mu      sync.Mutex
	closed  bool
	peers   map[string]*peer
	inbound map[*ServerConn]struct{}
	links   map[*clientLink]struct{}
}

// Start binds the gossip and link listeners, joins the cluster in the
// background and serves h. ctx bounds start-up only; the Transport lives
// until Close.
func Start(ctx context.Context, cfg Config, h Handler) (*Transport, error) {
	cfg, prof, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("transport: nil Handler")
	}
	t := &Transport{
		cfg: cfg, prof: prof, log: cfg.Logger, handler: h, name: cfg.NodeName,
		rng:     cfg.hooks.rng,
		preauth: newPreAuth(cfg.MaxPreAuthPerSource, cfg.MaxPreAuth),
		peers:   make(map[string]*peer),
		inbound: make(map[*ServerConn]struct{}),
		links:   make(map[*clientLink]struct{}),
	}
	if t.rng == nil {
		t.rng = rand.Reader
	}
	for _, s := range append([][]byte{cfg.Secret}, cfg.PreviousSecrets...) {
		t.secrets = append(t.secrets, newSpakeSecret(s, cfg.Label))
	}
	if !cfg.InsecurePlaintext {
		if t.tlsServer, t.tlsClient, err = linkTLS(cfg.TLS); err != nil {
			return nil, err
		}
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.closing = make(chan struct{})
	t.local = t.newServerConn(t.name, nil, nil)
	var undo []func()
	fail := func(err error) (*Transport, error) {
		for _, u := range slices.Backward(undo) {
			u()
		}
		t.cancel()
		return nil, err
	}

	var lc net.ListenConfig
	rpcBind, wildcard := bindAddr(cfg.RPCAddr, defaultRPCPort)
	t.ln, err = lc.Listen(ctx, "tcp", rpcBind)
	if err != nil && wildcard && ipv4Fallback(err) {
		rpcBind = net.JoinHostPort("0.0.0.0", defaultRPCPort)
		t.ln, err = lc.Listen(ctx, "tcp", rpcBind)
	}
	if err != nil {
		return fail(fmt.Errorf("transport: listen on %s: %w", rpcBind, err))
	}
	undo = append(undo, func() { _ = t.ln.Close() })
	gossipBind, wildcard := bindAddr(cfg.GossipAddr, defaultGossipPort)
	nt, err := newNetTransport(gossipBind, memberlistLogger(t.log))
	if err != nil && wildcard && ipv4Fallback(err) {
		gossipBind = net.JoinHostPort("0.0.0.0", defaultGossipPort)
		nt, err = newNetTransport(gossipBind, memberlistLogger(t.log))
	}
	if err != nil {
		return fail(fmt.Errorf("transport: gossip on %s: %w", gossipBind, err))
	}
	undo = append(undo, func() { _ = nt.Shutdown() })
	host, _, _ := net.SplitHostPort(gossipBind)
	boundIP := net.ParseIP(host)
	if host == "" {
		boundIP = net.IPv6unspecified
	}
	if boundIP == nil {
		return fail(fmt.Errorf("transport: gossip address %s: bind an IP address, not a name", gossipBind))
	}
	port := nt.GetAutoBindPort()
	var ip net.IP
	if cfg.AdvertiseGossipAddr != "" {
		ip, port, err = t.parseAdvertise(cfg.AdvertiseGossipAddr, port)
	} else {
		ip, err = t.advertiseIP(boundIP)
	}
	if err != nil {
		return fail(err)
	}
	t.gossipAddr = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	t.rpcAddr = advertiseRPC(cfg.AdvertiseRPCAddr, t.ln.Addr(), ip)

	meta := Meta{Region: cfg.Region, RPCAddr: t.rpcAddr, Version: cfg.MaxProtocolVersion, MinVersion: cfg.MinProtocolVersion,
		Databases: slices.Clone(cfg.Databases)}
	if cfg.Primary != nil {
		meta.Primary = cfg.Primary()
	}
	if t.mem, err = newMembership(t.name, meta, t.log, t.memberLeft, t.dropPeer, t.memberJoined); err != nil {
		return fail(err)
	}
	gt := newGossipTransport(nt, cfg.hooks)
	undo[len(undo)-1] = func() { _ = gt.Shutdown() }
	mlc, err := t.memberlistConfig(prof, gt, ip, port)
	if err != nil {
		return fail(err)
	}
	if t.ml, err = memberlist.Create(mlc); err != nil {
		return fail(fmt.Errorf("transport: memberlist: %w", err))
	}

	t.wg.Add(1)
	go t.acceptLoop()
	if len(cfg.Join) > 0 || cfg.JoinDNS != "" {
		t.wg.Add(1)
		go t.joinLoop()
	}
	if cfg.Primary != nil {
		t.wg.Add(1)
		go t.pollPrimary()
	}
	t.log.Info("transport: started", "node", t.name, "region", cfg.Region, "gossip", t.gossipAddr, "rpc", t.rpcAddr, "profile", cfg.Profile,
		"tls", !cfg.InsecurePlaintext, "versions", fmt.Sprintf("%d-%d", cfg.MinProtocolVersion, cfg.MaxProtocolVersion))
	return t, nil
}

// handshakeParams is this node's side of a link handshake.
func (t *Transport) handshakeParams(binding []byte) handshakeParams {
	return handshakeParams{
		self: t.name, secrets: t.secrets,
		minV: t.cfg.MinProtocolVersion, maxV: t.cfg.MaxProtocolVersion,
		maxFrame: t.cfg.MaxFrameSize, maxRequest: t.cfg.MaxRequestSize, window: t.cfg.StreamWindow,
		binding: binding, rng: t.rng,
	}
}

// advertiseRPC picks the link address to advertise: the configured one, else
// the bound one, with an unspecified host replaced by the gossip IP.
func advertiseRPC(configured string, bound net.Addr, gossipIP net.IP) string {
	if configured != "" {
		return configured
	}
	a := bound.(*net.TCPAddr)
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = gossipIP
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

// Name is this node's name.
func (t *Transport) Name() string { return t.name }

// GossipAddr is the advertised gossip address, with the actual port.
func (t *Transport) GossipAddr() string { return t.gossipAddr }

// RPCAddr is the advertised link address, with the actual port.
func (t *Transport) RPCAddr() string { return t.rpcAddr }

// Members returns the live members, this node included.
func (t *Transport) Members() []Member {
	ms := t.mem.list()
	for i := range ms {
		if rtt := t.linkRTT(ms[i].Name); rtt > 0 {
			ms[i].RTT = rtt
		}
		ms[i].LinkVersion = ms[i].commonVersion(t.cfg.MinProtocolVersion, t.cfg.MaxProtocolVersion)
	}
	return ms
}

func (t *Transport) linkRTT(name string) time.Duration {
	t.mu.Lock()
	p := t.peers[name]
	t.mu.Unlock()
	if p == nil {
		return 0
	}
	return p.rtt()
}

// SetPrimary sets the Primary flag this node advertises.
func (t *Transport) SetPrimary(v bool) {
	if err := t.updateMeta(func(m *Meta) { m.Primary = v }); err != nil {
		t.log.Error("transport: cannot advertise primary flag", "err", err)
		return
	}
}

// SetDatabases sets the databases this node advertises and broadcasts them.
// It refuses (changing nothing) a list whose meta would not fit
// memberlist's 512-byte limit: about a dozen databases with short names.
func (t *Transport) SetDatabases(dbs []DatabaseMeta) error {
	return t.updateMeta(func(m *Meta) { m.Databases = slices.Clone(dbs) })
}

// updateMeta changes our meta and, if that changed anything, broadcasts it.
func (t *Transport) updateMeta(change func(*Meta)) error {
	t.mlMu.RLock()
	defer t.mlMu.RUnlock()
	if t.isClosed() {
		return nil
	}
	changed, err := t.mem.setMeta(change)
	if err != nil || !changed {
		return err
	}
	m := t.mem.localMeta()
	t.log.Info("transport: advertising new meta", "primary", m.Primary, "databases", len(m.Databases))
	// UpdateNode waits until the change is broadcast; it gets an answer in
	// a few gossip intervals unless we are cut off, when the periodic
	// push-pull spreads it later anyway.
	if err := t.ml.UpdateNode(t.prof.leave); err != nil {
		t.log.Debug("transport: meta update not yet broadcast", "err", err)
	}
	return nil
}

func (t *Transport) pollPrimary() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.PrimaryInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			t.SetPrimary(t.cfg.Primary())
		}
	}
}

// joinLoop joins the cluster, retrying with backoff, and rejoins whenever
// this node finds itself alone (after a partition, or when every peer it
// knew restarted under new names).
// aliasRecheck is how many rejoin checks a join target that turned out to
// be a member under another address is left alone.
const aliasRecheck = 10

func (t *Transport) joinLoop() {
	defer t.wg.Done()
	failures := 0
	aliases := make(map[string]time.Time) // join target → not before
	for {
		wait := t.prof.rejoinCheck
		if alone := t.ml.NumMembers() <= 1; alone {
			addrs := t.joinAddrs()
			n := 0
			var err error
			if len(addrs) > 0 {
				n, err = t.ml.Join(addrs)
			}
			if n > 0 {
				failures = 0
				t.log.Info("transport: joined the cluster", "via", addrs, "members", t.ml.NumMembers())
			} else {
				failures++
				wait = t.backoff(failures)
				t.log.Debug("transport: join failed; retrying", "addrs", addrs, "err", err, "retry_in", wait)
			}
		} else if addrs := t.unjoinedAddrs(aliases); len(addrs) > 0 {
			// A join target that is no live member — a node replaced at
			// the same address, a cluster split in two — would stay apart
			// from us if it does not join us itself (it has no join list,
			// or its own members are elsewhere): contact it.
			now := time.Now()
			for a, until := range aliases {
				if now.After(until) {
					delete(aliases, a)
				}
			}
			for _, a := range addrs { // one at a time: each is judged on its own
				before := t.ml.NumMembers()
				n, err := t.ml.Join([]string{a})
				switch {
				case n > 0 && t.ml.NumMembers() > before:
					t.log.Info("transport: joined a join target that was not a member", "via", a, "members", t.ml.NumMembers())
				case n > 0:
					// A member already, known by another address (an
					// advertised or NATed one, IPv4 and IPv6 of one name):
					// ask again only now and then.
					aliases[a] = now.Add(aliasRecheck * t.prof.rejoinCheck)
					t.log.Debug("transport: join target is a member under another address", "addr", a)
				default:
					t.log.Debug("transport: join target unreachable", "addr", a, "err", err)
				}
			}
		}
		select {
		case <-t.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// unjoinedAddrs is joinAddrs less the addresses of live members and of
// known aliases of members.
func (t *Transport) unjoinedAddrs(aliases map[string]time.Time) []string {
	// Our own copy of the membership: memberlist's Members() hands out
	// pointers to nodes it goes on updating.
	live := make(map[string]bool)
	for _, m := range t.Members() {
		live[m.Addr] = true
	}
	now := time.Now()
	var out []string
	for _, a := range t.joinAddrs() {
		if !live[a] && !now.Before(aliases[a]) {
			out = append(out, a)
		}
	}
	return out
}

// joinAddrs resolves the join targets, leaving out this node itself (a
// DNS name for the whole app resolves to us too, and "joining" ourselves
// would look like success).
func (t *Transport) joinAddrs() []string {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	_, ownPort, _ := net.SplitHostPort(t.gossipAddr)
	targets := append([]string(nil), t.cfg.Join...)
	if t.cfg.JoinDNS != "" {
		targets = append(targets, t.cfg.JoinDNS)
	}
	var out []string
	for _, target := range targets {
		host, port, err := net.SplitHostPort(target)
		if err != nil {
			host, port = target, ownPort
		}
		var ips []net.IP
		if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
			ips = []net.IP{ip}
		} else {
			var err error
			if ips, err = t.lookupIP(ctx, host); err != nil {
				t.log.Debug("transport: join target does not resolve", "target", target, "err", err)
				continue
			}
		}
		for _, ip := range ips {
			if a := net.JoinHostPort(ip.String(), port); a != t.gossipAddr {
				out = append(out, a)
			}
		}
	}
	return out
}

// Close leaves the cluster and shuts down gracefully: new calls fail with
// ErrClosed, peers are told to stop sending here, and requests in flight in
// either direction get up to DrainTimeout to finish before they are cut off.
// It returns when every goroutine the Transport started has ended (so a
// handler that ignores its context's cancellation delays it, and a handler
// must not call it). Calling Close again returns nil.
func (t *Transport) Close() error { return t.shutdown(true) }

// kill stops the node abruptly, as a crash would: no leave, no drain.
func (t *Transport) kill() { _ = t.shutdown(false) }

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *Transport) shutdown(graceful bool) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	t.mu.Unlock()
	// Barrier: a SetPrimary already inside UpdateNode finishes before
	// memberlist goes away; later ones see closed and do nothing.
	t.mlMu.Lock()
	t.mlMu.Unlock() //nolint:staticcheck // an intentionally empty critical section

	// From here new requests are refused (ErrNotSent, so callers go
	// elsewhere) while those in flight finish.
	serving, calling := t.serving.close(), t.calling.close()
	_ = t.ln.Close()
	var errs []error
	if graceful {
		for _, sc := range t.snapshotInbound() {
			sc.goAway()
		}
		if err := t.ml.Leave(t.prof.leave); err != nil {
			// Not an error of Close: peers that miss the leave message
			// find the node dead by probing instead, a little later.
			t.log.Warn("transport: leave broadcast not confirmed; peers will detect the departure by probing", "err", err)
		}
		deadline := time.NewTimer(t.cfg.DrainTimeout)
	drain:
		for _, drained := range []<-chan struct{}{serving, calling} {
			select {
			case <-drained:
			case <-deadline.C:
				t.log.Warn("transport: drain timed out; cutting off requests in flight")
				break drain
			}
		}
		deadline.Stop()
	}

	// Everything left is cut: peers (and their redials), outbound links,
	// inbound links, half-open handshakes, background loops.
	t.mu.Lock()
	peers := t.peers
	t.peers = make(map[string]*peer)
	links := make([]*clientLink, 0, len(t.links))
	for l := range t.links {
		links = append(links, l)
	}
	t.mu.Unlock()
	for _, p := range peers {
		p.close(ErrClosed, false)
	}
	for _, l := range links {
		l.fail(ErrClosed)
	}
	for _, sc := range t.snapshotInbound() {
		sc.l.close(ErrClosed)
	}
	t.preauth.closeAll()
	t.cancel()
	// In-process requests still running (a stream nobody reads) end too.
	t.local.shutdown()
	if err := t.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("transport: memberlist shutdown: %w", err))
	}
	t.wg.Wait()
	t.log.Info("transport: closed", "node", t.name, "graceful", graceful)
	return errors.Join(errs...)
}

func (t *Transport) snapshotInbound() []*ServerConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*ServerConn, 0, len(t.inbound))
	for sc := range t.inbound {
		out = append(out, sc)
	}
	return out
}

// trackConn and trackLink register (add=true) or forget connections so
// that shutdown can cut them. Registering fails once the Transport is
// closed.
func (t *Transport) trackConn(sc *ServerConn, add bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !add {
		delete(t.inbound, sc)
		return true
	}
	if t.closed {
		return false
	}
	t.inbound[sc] = struct{}{}
	return true
}

func (t *Transport) trackLink(l *clientLink, add bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !add {
		delete(t.links, l)
		return true
	}
	if t.closed {
		return false
	}
	t.links[l] = struct{}{}
	return true
}

// peerFor returns the peer for m, replacing one whose address is stale.
func (t *Transport) peerFor(m Member) (*peer, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	p := t.peers[m.Name]
	var stale *peer
	if p != nil && p.addr != m.RPCAddr {
		stale, p = p, nil
	}
	if p == nil {
		p = &peer{t: t, name: m.Name, addr: m.RPCAddr}
		t.peers[m.Name] = p
	}
	t.mu.Unlock()
	if stale != nil {
		stale.close(fmt.Errorf("node %s moved to %s", m.Name, m.RPCAddr), true)
	}
	p.mu.Lock()
	p.meta = m.Meta.clone()
	p.mu.Unlock()
	if m.Alive {
		p.setGone(false)
	}
	return p, nil
}

// memberLeft is membership's news that a member left or was declared dead.
// Our link to it, if healthy, stays: gossip can be lost while the network
// between two nodes is fine, and requests pinned to the node (a remote
// transaction's) must not fail for that. It is not redialled, and goes when
// it fails its keep-alives; a member that really left has said goodbye on
// the link itself.
func (t *Transport) memberLeft(name string) {
	t.mu.Lock()
	p := t.peers[name]
	t.mu.Unlock()
	if p != nil && p.setGone(true) {
		t.forgetPeer(p)
	}
}

// memberJoined is membership's news that a member is alive (again).
func (t *Transport) memberJoined(name string) {
	t.mu.Lock()
	p := t.peers[name]
	t.mu.Unlock()
	if p != nil {
		p.setGone(false)
	}
}

// forgetPeer drops p from the peer table if it is still there.
func (t *Transport) forgetPeer(p *peer) {
	t.mu.Lock()
	if t.peers[p.name] == p {
		delete(t.peers, p.name)
	}
	t.mu.Unlock()
}

// dropPeer forgets a member that moved, retiring our link to it.
func (t *Transport) dropPeer(name string) {
	t.mu.Lock()
	p := t.peers[name]
	delete(t.peers, name)
	t.mu.Unlock()
	if p != nil {
		p.close(fmt.Errorf("node %s moved", name), true)
	}
}

// gate counts work in flight and, once closed, admits no more and reports
// when the last one leaves. (A WaitGroup cannot: Add may not race Wait.)
type gate struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{}
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.zero != nil {
		close(g.zero)
		g.zero = nil
	}
}

// close stops admissions; the channel is closed when nothing is in flight.
func (g *gate) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	ch := make(chan struct{})
	if g.n == 0 {
		close(ch)
	} else {
		g.zero = ch
	}
	return ch
}
