// Package wan simulates the network between regions on loopback, for
// flypg's tests and its lab.
//
// flypg's behaviour only becomes interesting when the primary is far away:
// forwarded writes pay a round trip, replicas lag behind by at least half of
// one, and a lost link must end in a clear error rather than a hang. The
// kernel of the test machines has no netem, so the delay is added in user
// space: a [WAN] runs TCP proxies on 127.0.0.1 that hold every chunk of data
// they read for RTT/2 before writing it on. Put a proxy in front of anything
// that crosses the simulated link — the primary's port for a replica's WAL
// stream, a node's RPC address for another region's write link — and dial
// the proxy instead.
//
// # Release precision
//
// Each direction of each connection has its own release goroutine, which
// holds a chunk until its deadline (the moment the proxy read it, plus
// RTT/2) and writes it then. A Go timer fires about 0.2–0.6 ms late (the
// runtime's poller sleeps with millisecond granularity), and timers of
// different connections that fire late fire together: a WAL record and the
// reply it belongs to would then leave the proxy in the same instant, hiding
// the WAL's real lead and making a replica look staler than it would be. So
// the release waits in three steps: a Go timer (interruptible: a partition,
// Close or SetRTT ends the wait at once) until 2 ms before the deadline, a
// precise sleep (nanosleep(2) on Linux, whose hrtimer wakes about 80 µs late)
// until 150 µs before it, and a spin for the rest. On an idle machine a chunk
// leaves within a few microseconds of its deadline; on a loaded one the
// release is as late as the scheduler makes it, never early.
// BenchmarkReleaseError measures it against toxiproxy's latency toxic, which
// this package used before.
//
// Delays are exact durations (no rounding to milliseconds). A one-way delay
// is measured from the moment the proxy read the bytes, so the data of one
// connection is never reordered (with jitter, a chunk that drew a short delay
// waits behind an earlier one) and a round trip never takes less than the
// RTT (minus jitter).
//
// [WAN.Partition] cuts the link: every proxy of the WAN closes its listener
// and its connections (the peers see EOF or a reset, data in flight is lost)
// and new dials are refused (ECONNREFUSED) until [WAN.Heal] listens again on
// the same addresses. A refused dial was chosen over a black hole because it
// fails fast and deterministically; a test that needs an unanswered peer can
// pause replay (pgcluster) or hold a listener that never accepts.
//
// [WAN.Stats] counts a proxy's connections, bytes and requests — data from
// the client that follows data delivered to it — which, for a
// request/response protocol used by one caller at a time, is the number of
// round trips the client paid.
package wan

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by a WAN's methods after Close.
var ErrClosed = errors.New("wan: closed")

const (
	// dialTimeout bounds the proxy's own dial of the upstream (loopback: it
	// fails at once unless the upstream's backlog is full).
	dialTimeout = 5 * time.Second
	// chunkSize is the largest read, and so the largest chunk delayed as
	// one.
	chunkSize = 32 << 10
	// queueChunks bounds the chunks one direction holds: a sender that gets
	// further ahead is slowed by TCP's own backpressure, as on a real link
	// whose bandwidth-delay product is bounded (1024 × 32 KiB is far more
	// than the lab's traffic needs).
	queueChunks = 1024
)

// WAN is one link between regions: every proxy made by it carries the same
// latency, and Partition/Heal/SetRTT/Close act on all of them at once. The
// methods are safe for concurrent use.
type WAN struct {
	mu          sync.Mutex
	rtt, jitter time.Duration
	lat         *latency
	proxies     map[string]*proxy
	partitioned bool
	closed      bool
}

// Option configures a WAN.
type Option func(*WAN)

// WithJitter makes each round trip vary uniformly within ±d around the RTT
// (±d/2 in each direction). Data of one connection is still delivered in
// order: a chunk that drew a short delay waits behind an earlier one.
func WithJitter(d time.Duration) Option {
	return func(w *WAN) { w.jitter = max(d, 0) }
}

// New returns a WAN whose proxies add rtt/2 in each direction. A zero rtt
// makes transparent proxies (still useful for Partition and Stats). New
// starts nothing: proxies start with Proxy.
func New(rtt time.Duration, opts ...Option) *WAN {
	w := &WAN{rtt: max(rtt, 0)}
	for _, o := range opts {
		o(w)
	}
	w.lat = newLatency(w.rtt, w.jitter)
	return w
}

// RTT returns the current round-trip time.
func (w *WAN) RTT() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rtt
}

// Proxy starts a proxy on a free port of 127.0.0.1 that forwards to upstream
// (host:port) across the WAN and returns its address. name identifies the
// proxy within the WAN and must be unique. A proxy made while the WAN is
// partitioned reserves its address but refuses connections until Heal. The
// proxy lives until Close; ctx only bounds the call.
func (w *WAN) Proxy(ctx context.Context, name, upstream string) (listenAddr string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return "", ErrClosed
	}
	if _, dup := w.proxies[name]; dup {
		return "", fmt.Errorf("wan: proxy %q already exists", name)
	}
	p := &proxy{name: name, upstream: upstream, links: map[*link]struct{}{}}
	p.lat.Store(w.lat)
	if err := p.listen(ctx, "127.0.0.1:0"); err != nil {
		return "", err
	}
	if w.partitioned {
		p.cut()
	}
	if w.proxies == nil {
		w.proxies = map[string]*proxy{}
	}
	w.proxies[name] = p
	return p.addr, nil
}

// Stats is what one proxy carried since it was made.
type Stats struct {
	// Conns counts the connections it accepted and connected upstream.
	Conns int64
	// Requests counts bursts of data from clients that each follow data
	// delivered to that client (a connection's first burst counts too): on
	// a request/response protocol with one caller at a time, the round
	// trips the client paid. Data a client sends without waiting for an
	// answer (a pipeline) counts once.
	Requests int64
	// BytesUp is what clients sent upstream, BytesDown what came back.
	BytesUp, BytesDown int64
}

// Stats returns the counters of the proxy called name.
func (w *WAN) Stats(name string) (Stats, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.proxies[name]
	if !ok {
		return Stats{}, fmt.Errorf("wan: no proxy %q", name)
	}
	return Stats{
		Conns:     p.stats.conns.Load(),
		Requests:  p.stats.requests.Load(),
		BytesUp:   p.stats.bytes[0].Load(),
		BytesDown: p.stats.bytes[1].Load(),
	}, nil
}

// Partition cuts every proxy of the WAN: their connections are closed and
// new dials are refused until Heal. It returns once every connection's
// goroutines have ended. Partitioning a partitioned or closed WAN does
// nothing.
func (w *WAN) Partition() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.partitioned {
		return
	}
	w.partitioned = true
	for _, p := range w.proxies {
		p.cut()
	}
}

// Heal makes the proxies of a partitioned WAN listen again on their old
// addresses, with the current RTT. It fails, leaving the whole WAN
// partitioned, only if another process took one of the ports meanwhile.
// Healing a WAN that is not partitioned does nothing.
func (w *WAN) Heal() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if !w.partitioned {
		return nil
	}
	var healed []*proxy
	for _, p := range w.proxies {
		if err := p.listen(context.Background(), p.addr); err != nil {
			// All or nothing, so that the WAN is either partitioned or not.
			for _, h := range healed {
				h.cut()
			}
			return err
		}
		healed = append(healed, p)
	}
	w.partitioned = false
	return nil
}

// SetRTT changes the round-trip time of every proxy, open connections
// included: every chunk not yet released, the ones being held included,
// gets the new delay counted from when the proxy read it (a chunk whose new
// deadline has passed leaves at once).
func (w *WAN) SetRTT(d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.rtt = max(d, 0)
	old := w.lat
	w.lat = newLatency(w.rtt, w.jitter)
	for _, p := range w.proxies {
		p.lat.Store(w.lat)
	}
	close(old.changed) // after the stores: a woken release reads the new one
	return nil
}

// Close stops every proxy, closes their connections and returns once all
// their goroutines have ended. It is safe to call more than once.
func (w *WAN) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	for _, p := range w.proxies {
		p.cut()
	}
	return nil
}

// latency is one setting of the one-way delay. It is never changed: SetRTT
// makes a new one and closes the old one's changed channel, which wakes
// every release waiting on it.
type latency struct {
	oneWay, jitter time.Duration // jitter: the total width, ±jitter/2
	changed        chan struct{}
}

func newLatency(rtt, jitter time.Duration) *latency {
	return &latency{oneWay: rtt / 2, jitter: jitter / 2, changed: make(chan struct{})}
}

// delay draws one chunk's one-way delay.
func (l *latency) delay() time.Duration {
	d := l.oneWay
	if l.jitter > 0 {
		d += rand.N(l.jitter+1) - l.jitter/2
	}
	return max(d, 0)
}

// proxy is one listening address of a WAN and its connections.
type proxy struct {
	name, upstream string
	addr           string // bound address, kept across Partition/Heal
	lat            atomic.Pointer[latency]
	stats          struct {
		conns, requests atomic.Int64
		bytes           [2]atomic.Int64 // by direction: 0 up, 1 down
	}

	mu      sync.Mutex
	ln      net.Listener // nil while cut
	cancel  context.CancelFunc
	links   map[*link]struct{}
	running sync.WaitGroup // accept loop and every link goroutine
}

// listen binds addr and starts accepting.
func (p *proxy) listen(ctx context.Context, addr string) error {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("wan: proxy %q: listen on %s: %w", p.name, addr, err)
	}
	actx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.addr, p.ln, p.cancel = ln.Addr().String(), ln, cancel
	p.mu.Unlock()
	p.running.Go(func() { p.accept(actx, ln) })
	return nil
}

func (p *proxy) accept(ctx context.Context, ln net.Listener) {
	d := net.Dialer{Timeout: dialTimeout}
	for {
		client, err := ln.Accept()
		if err != nil {
			return // closed by cut
		}
		server, err := d.DialContext(ctx, "tcp", p.upstream)
		if err != nil {
			// The client sees its connection close, as with an upstream
			// that refuses.
			client.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // cut while we dialled
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.stats.conns.Add(1)
		l := &link{p: p, conns: [2]net.Conn{client, server}, stop: make(chan struct{})}
		l.answered.Store(true) // the first burst is a request
		p.links[l] = struct{}{}
		l.start(&p.running, func() {
			p.mu.Lock()
			delete(p.links, l)
			p.mu.Unlock()
		})
		p.mu.Unlock()
	}
}

// cut closes the listener and every connection, and waits for all their
// goroutines. Cutting a cut proxy does nothing.
func (p *proxy) cut() {
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		return
	}
	p.ln.Close()
	p.cancel()
	p.ln, p.cancel = nil, nil
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.teardown()
	}
	p.running.Wait()
}

// link is one proxied TCP connection: conns[0] is the client's, conns[1] the
// upstream's. Each direction runs a reader, which timestamps what it reads
// and queues it, and a release goroutine, which writes each chunk on at its
// deadline.
type link struct {
	p         *proxy
	conns     [2]net.Conn
	stop      chan struct{} // closed by teardown: drop what is held
	stopOnce  sync.Once
	closeOnce sync.Once
	// answered: data went down to the client since its last request.
	answered atomic.Bool
}

// chunk is data read from one side, with the moment it was read.
type chunk struct {
	data   []byte
	readAt time.Time
}

// start runs both directions; done is called when both have ended. The
// goroutines are counted in wg.
func (l *link) start(wg *sync.WaitGroup, done func()) {
	var left sync.WaitGroup
	left.Add(2)
	for dir := range 2 {
		src, dst := l.conns[dir], l.conns[1-dir]
		q := make(chan chunk, queueChunks)
		wg.Go(func() { l.read(dir, src, q) })
		wg.Go(func() {
			defer left.Done()
			l.release(dir, dst, q)
		})
	}
	wg.Go(func() {
		left.Wait()
		l.close()
		done()
	})
}

// read queues what src sends until it ends, then closes q.
func (l *link) read(dir int, src net.Conn, q chan<- chunk) {
	defer close(q)
	for {
		buf := make([]byte, chunkSize)
		n, err := src.Read(buf)
		if n > 0 {
			c := chunk{data: buf[:n:n], readAt: time.Now()}
			if dir == 0 && l.answered.Swap(false) {
				l.p.stats.requests.Add(1)
			}
			l.p.stats.bytes[dir].Add(int64(n))
			select {
			case q <- c:
			case <-l.stop:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// release writes each chunk of q to dst at its deadline, in order.
func (l *link) release(dir int, dst net.Conn, q <-chan chunk) {
	var last time.Time // deadlines never go back: no reordering
	for {
		var c chunk
		var ok bool
		select {
		case c, ok = <-q:
		case <-l.stop:
			return
		}
		if !ok {
			// The source finished cleanly: pass its FIN on, so that a
			// half-closed connection still gets its answer.
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
		if !l.hold(c.readAt, &last) {
			return
		}
		if dir == 1 {
			// Before the write: once it is done, the client may answer
			// at once, and its reader must count that as a request.
			l.answered.Store(true)
		}
		if _, err := dst.Write(c.data); err != nil {
			// dst is gone: end the whole connection; the reader stops
			// when its source closes or stop is closed.
			l.teardown()
			return
		}
	}
}

// hold waits until the chunk read at readAt is due. It returns false if the
// link is torn down meanwhile.
func (l *link) hold(readAt time.Time, last *time.Time) bool {
	for {
		lat := l.p.lat.Load()
		deadline := readAt.Add(lat.delay())
		if deadline.Before(*last) {
			deadline = *last
		}
		switch waitUntil(deadline, l.stop, lat.changed) {
		case waitDue:
			*last = deadline
			return true
		case waitStopped:
			return false
		case waitChanged:
			// SetRTT: recompute from the read time with the new delay.
		}
	}
}

func (l *link) close() {
	l.closeOnce.Do(func() {
		l.conns[0].Close()
		l.conns[1].Close()
	})
}

// teardown closes the connection and drops the data held in its delays.
func (l *link) teardown() {
	l.close()
	l.stopOnce.Do(func() { close(l.stop) })
}
