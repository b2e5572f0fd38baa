package transport

import (
	"net"
	"sync"
)

// preAuth tracks inbound connections that have not completed the handshake
// (on the link port), or have not finished their one exchange (on the
// gossip port). When a cap is reached it evicts an existing connection
// instead of refusing the newest: an attacker holding idle connections open
// then only pushes out its own, while a legitimate node's handshake, which
// takes a few round trips, completes first.
//
// Which one goes, in order:
//
//  1. the least advanced: a connection that sent nothing before one that
//     sent something, and that before one whose TLS handshake is done (an
//     idle flood, however many addresses it comes from, then only evicts
//     itself; to compete with a handshake in progress an attacker must do a
//     TLS handshake per connection, as the node does);
//  2. for the global cap, from the network holding the most — an IPv6
//     host's /64 counts as one network, since any host can use all of it
//     — so a flood from one place cannot push out a node connecting from
//     another;
//  3. the oldest.
//
// The per-source cap counts single addresses, not /64s: machines of one
// app may share a /64 (as on Fly.io's private network), and a cluster
// reconnecting at once must not be capped as one source.
type preAuth struct {
	perSource, global int

	mu      sync.Mutex
	seq     uint64
	total   int
	sources map[string][]*preAuthConn // by address, oldest first
	evicted uint64                    // count, for tests and logs
	closed  bool
}

// Stages of a pre-auth connection's progress, for eviction.
const (
	stageIdle  = iota // nothing received yet
	stageBytes        // the peer sent something
	stageTLS          // the TLS handshake completed
)

type preAuthConn struct {
	conn  net.Conn
	src   string // address: the per-source cap
	net   string // /64 for IPv6, the address for IPv4: the global choice
	seq   uint64
	stage int
	gone  bool // evicted or finished
}

func newPreAuth(perSource, global int) *preAuth {
	return &preAuth{perSource: perSource, global: global, sources: make(map[string][]*preAuthConn)}
}

// sourceOf keys a connection by its remote IP (ports are free to vary), and
// by its network: the /64 of an IPv6 address, an IPv4 address itself.
func sourceOf(c net.Conn) (addr, network string) {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		s := c.RemoteAddr().String()
		return s, s
	}
	addr = a.IP.String()
	if a.IP.To4() != nil {
		return addr, addr
	}
	return addr, a.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// add registers c, evicting (closing) another connection as the caps
// require. It returns nil once closeAll has run.
func (p *preAuth) add(c net.Conn) *preAuthConn {
	e := &preAuthConn{conn: c}
	e.src, e.net = sourceOf(c)
	var victim *preAuthConn
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.seq++
	e.seq = p.seq
	if q := p.sources[e.src]; len(q) >= p.perSource {
		victim = pickVictim(q)
	} else if p.total >= p.global {
		victim = p.globalVictimLocked()
	}
	if victim != nil {
		p.removeLocked(victim)
		p.evicted++
	}
	p.sources[e.src] = append(p.sources[e.src], e)
	p.total++
	p.mu.Unlock()
	if victim != nil {
		_ = victim.conn.Close()
	}
	return e
}

// advance records that e reached stage s.
func (p *preAuth) advance(e *preAuthConn, s int) {
	p.mu.Lock()
	e.stage = max(e.stage, s)
	p.mu.Unlock()
}

// done forgets a connection that finished its handshake or failed it.
func (p *preAuth) done(e *preAuthConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !e.gone {
		p.removeLocked(e)
	}
}

func (p *preAuth) removeLocked(e *preAuthConn) {
	e.gone = true
	q := p.sources[e.src]
	for i, x := range q {
		if x == e {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(p.sources, e.src)
	} else {
		p.sources[e.src] = q
	}
	p.total--
}

// pickVictim is the least advanced, then oldest, of q (oldest first).
func pickVictim(q []*preAuthConn) *preAuthConn {
	var v *preAuthConn
	for _, e := range q {
		if v == nil || e.stage < v.stage {
			v = e
		}
	}
	return v
}

// globalVictimLocked is the connection the global cap evicts: of the least
// advanced stage present, from the network with the most connections at
// that stage, the oldest.
func (p *preAuth) globalVictimLocked() *preAuthConn {
	low := stageTLS + 1
	for _, q := range p.sources {
		for _, e := range q {
			low = min(low, e.stage)
		}
	}
	counts := make(map[string]int)
	for _, q := range p.sources {
		for _, e := range q {
			if e.stage == low {
				counts[e.net]++
			}
		}
	}
	var v *preAuthConn
	for _, q := range p.sources {
		for _, e := range q {
			if e.stage != low {
				continue
			}
			if v == nil || counts[e.net] > counts[v.net] || counts[e.net] == counts[v.net] && e.seq < v.seq {
				v = e
			}
		}
	}
	return v
}

// closeAll closes every pre-auth connection (shutdown).
func (p *preAuth) closeAll() {
	p.mu.Lock()
	var all []net.Conn
	for _, q := range p.sources {
		for _, e := range q {
			e.gone = true
			all = append(all, e.conn)
		}
	}
	p.sources = make(map[string][]*preAuthConn)
	p.total = 0
	p.closed = true
	p.mu.Unlock()
	for _, c := range all {
		_ = c.Close()
	}
}

func (p *preAuth) stats() (open int, evicted uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total, p.evicted
}

// progressConn reports a pre-auth connection's first received bytes.
type progressConn struct {
	net.Conn
	p    *preAuth
	e    *preAuthConn
	seen bool
}

func (c *progressConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.seen {
		c.seen = true
		c.p.advance(c.e, stageBytes)
	}
	return n, err
}
