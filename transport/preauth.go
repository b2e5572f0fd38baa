package transport

import (
	"net"
	"sync"
)

// preAuth tracks inbound connections that have not completed the handshake.
// When a cap is reached it evicts the oldest such connection instead of
// refusing the newest: an attacker holding idle connections open then only
// pushes out its own older ones, while a legitimate node's handshake, which
// takes a few round trips, completes before it becomes the oldest. The
// global cap evicts from the source holding the most, so a flood from one
// address cannot push out a node connecting from another.
type preAuth struct {
	perSource, global int

	mu      sync.Mutex
	seq     uint64
	total   int
	sources map[string][]*preAuthConn // oldest first
	evicted uint64                    // count, for tests and logs
	closed  bool
}

type preAuthConn struct {
	conn net.Conn
	src  string
	seq  uint64
	gone bool // evicted or finished
}

func newPreAuth(perSource, global int) *preAuth {
	return &preAuth{perSource: perSource, global: global, sources: make(map[string][]*preAuthConn)}
}

// sourceOf keys a connection by its remote IP: ports are free to vary.
func sourceOf(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// add registers c, evicting (closing) older connections as the caps
// require. It returns nil once closeAll has run.
func (p *preAuth) add(c net.Conn) *preAuthConn {
	e := &preAuthConn{conn: c, src: sourceOf(c)}
	var victims []*preAuthConn
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.seq++
	e.seq = p.seq
	if q := p.sources[e.src]; len(q) >= p.perSource {
		victims = append(victims, p.evictLocked(e.src))
	} else if p.total >= p.global {
		victims = append(victims, p.evictLocked(p.largestLocked()))
	}
	p.sources[e.src] = append(p.sources[e.src], e)
	p.total++
	p.mu.Unlock()
	for _, v := range victims {
		_ = v.conn.Close()
	}
	return e
}

// done forgets a connection that finished its handshake or failed it.
func (p *preAuth) done(e *preAuthConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.gone {
		return
	}
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

func (p *preAuth) evictLocked(src string) *preAuthConn {
	q := p.sources[src]
	v := q[0]
	v.gone = true
	if len(q) == 1 {
		delete(p.sources, src)
	} else {
		p.sources[src] = q[1:]
	}
	p.total--
	p.evicted++
	return v
}

// largestLocked is the source with the most pre-auth connections (the
// oldest such on ties, for determinism).
func (p *preAuth) largestLocked() string {
	best, n, seq := "", 0, uint64(0)
	for src, q := range p.sources {
		if len(q) > n || len(q) == n && q[0].seq < seq {
			best, n, seq = src, len(q), q[0].seq
		}
	}
	return best
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
