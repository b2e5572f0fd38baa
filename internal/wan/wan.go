// Package wan simulates the network between two regions on loopback, for
// flypg's tests and its lab.
//
// flypg's behaviour only becomes interesting when the primary is far away:
// forwarded writes pay a round trip, replicas lag behind by at least half of
// one, and a lost link must end in a clear error rather than a hang. The
// kernel of the test machines has no netem, so the delay is added in user
// space: a [WAN] runs TCP proxies on 127.0.0.1 whose two directions each
// carry a toxiproxy latency toxic of RTT/2 (github.com/Shopify/toxiproxy/v2,
// in process; no toxiproxy server). Put a proxy in front of anything that
// crosses the simulated link — the primary's port for a replica's WAL
// stream, a node's RPC address for another region's write link — and dial
// the proxy instead.
//
// Delays have millisecond granularity (toxiproxy's unit): RTT/2 and the
// jitter are rounded to whole milliseconds. A one-way delay is measured from
// the moment the proxy read the bytes, so the data of one connection is
// never reordered and a round trip never takes less than the RTT (minus
// jitter).
//
// [WAN.Partition] cuts the link: every proxy of the WAN closes its listener
// and its connections (the peers see EOF or a reset, data in flight is lost)
// and new dials are refused (ECONNREFUSED) until [WAN.Heal] listens again on
// the same addresses. A refused dial was chosen over a black hole because it
// fails fast and deterministically; a test that needs an unanswered peer can
// pause replay (pgcluster) or hold a listener that never accepts.
//
// Why not toxiproxy.Proxy: its connection loop (v2.12) stops reading a
// direction's toxic chain as soon as a write to the destination fails, so a
// peer that closes while the other side is still sending leaves a toxic
// goroutine blocked on a channel send for good — routine for a WAL stream or
// an RPC link, and fatal under goleak. This package uses toxiproxy's toxics,
// stubs and stream adapters unchanged, with its own accept and copy loops
// that drain the chain to the end.
package wan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// ErrClosed is returned by a WAN's methods after Close.
var ErrClosed = errors.New("wan: closed")

// dialTimeout bounds the proxy's own dial of the upstream (loopback: it
// fails at once unless the upstream's backlog is full).
const dialTimeout = 5 * time.Second

// WAN is one link between two regions: every proxy made by it carries the
// same latency, and Partition/Heal/SetRTT/Close act on all of them at once.
// The methods are safe for concurrent use.
type WAN struct {
	mu          sync.Mutex
	rtt, jitter time.Duration
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
// makes transparent proxies (still useful for Partition). New starts
// nothing: proxies start with Proxy.
func New(rtt time.Duration, opts ...Option) *WAN {
	w := &WAN{rtt: max(rtt, 0)}
	for _, o := range opts {
		o(w)
	}
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
	if err := p.listen(ctx, "127.0.0.1:0", w.latency()); err != nil {
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
		if err := p.listen(context.Background(), p.addr, w.latency()); err != nil {
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
// included. The one chunk per direction that is being delayed at that moment
// is released at once; everything else, already queued or read later, gets
// the new delay counted from when the proxy read it.
func (w *WAN) SetRTT(d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.rtt = max(d, 0)
	lat := w.latency()
	for _, p := range w.proxies {
		p.setLatency(lat)
	}
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

// latency returns a fresh toxic for the current settings. Every change makes
// a new toxic instead of updating one in place: running pipes read its
// fields without a lock.
func (w *WAN) latency() *toxics.ToxicWrapper {
	return &toxics.ToxicWrapper{
		Toxic: &toxics.LatencyToxic{
			Latency: (w.rtt / 2).Round(time.Millisecond).Milliseconds(),
			Jitter:  (w.jitter / 2).Round(time.Millisecond).Milliseconds(),
		},
		Name:     "latency",
		Type:     "latency",
		Toxicity: 1, // always apply (toxiproxy picks per connection otherwise)
	}
}

// noop passes data straight through; a link being torn down switches to it
// so that no goroutine sits out a long delay for data nobody will read.
var noop = &toxics.ToxicWrapper{Toxic: new(toxics.NoopToxic), Name: "noop", Type: "noop", Toxicity: 1}

// proxy is one listening address of a WAN and its connections.
type proxy struct {
	name, upstream string
	addr           string // bound address, kept across Partition/Heal

	mu      sync.Mutex
	ln      net.Listener // nil while cut
	cancel  context.CancelFunc
	lat     *toxics.ToxicWrapper
	links   map[*link]struct{}
	running sync.WaitGroup // accept loop and every link goroutine
}

// listen binds addr and starts accepting.
func (p *proxy) listen(ctx context.Context, addr string, lat *toxics.ToxicWrapper) error {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("wan: proxy %q: listen on %s: %w", p.name, addr, err)
	}
	actx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.addr, p.ln, p.cancel, p.lat = ln.Addr().String(), ln, cancel, lat
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
		l := &link{conns: [2]net.Conn{client, server}}
		p.links[l] = struct{}{}
		l.start(&p.running, p.lat, func() {
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
		l.teardown(&p.running)
	}
	p.running.Wait()
}

func (p *proxy) setLatency(lat *toxics.ToxicWrapper) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lat = lat
	for l := range p.links {
		l.retoxic(&p.running, lat)
	}
}

// link is one proxied TCP connection: conns[0] is the client's, conns[1] the
// upstream's. Each direction runs reader → latency stub → writer.
type link struct {
	conns     [2]net.Conn
	closeOnce sync.Once

	mu    sync.Mutex // serialises interrupts and restarts of the stubs
	stubs [2]*toxics.ToxicStub
	torn  bool
}

// start runs both directions; done is called when both have ended. The
// goroutines are counted in wg.
func (l *link) start(wg *sync.WaitGroup, lat *toxics.ToxicWrapper, done func()) {
	var left sync.WaitGroup
	left.Add(2)
	for dir := range 2 {
		src, dst := l.conns[dir], l.conns[1-dir]
		in := make(chan *stream.StreamChunk, new(toxics.LatencyToxic).GetBufferSize())
		out := make(chan *stream.StreamChunk)
		stub := toxics.NewToxicStub(in, out)
		l.stubs[dir] = stub
		wg.Go(func() {
			w := stream.NewChanWriter(in)
			_, _ = io.Copy(w, src)
			w.Close() // the stub closes out after the last chunk
		})
		wg.Go(func() { stub.Run(lat) })
		wg.Go(func() {
			defer left.Done()
			if _, err := io.Copy(dst, stream.NewChanReader(out)); err != nil {
				// dst is gone: end the whole connection, and keep draining
				// so that the stub is never left blocked on a send.
				l.close()
				for range out {
				}
				return
			}
			// The source finished cleanly: pass its FIN on, so that a
			// half-closed connection still gets its answer.
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		})
	}
	wg.Go(func() {
		left.Wait()
		l.close()
		done()
	})
}

func (l *link) close() {
	l.closeOnce.Do(func() {
		l.conns[0].Close()
		l.conns[1].Close()
	})
}

// teardown closes the connection and releases the data held in its delays.
func (l *link) teardown(wg *sync.WaitGroup) {
	l.close()
	l.mu.Lock()
	l.torn = true
	l.mu.Unlock()
	l.retoxic(wg, noop)
}

// retoxic swaps the toxic on both directions. An interrupted latency toxic
// forwards the chunk it holds at once; queued chunks keep their read time,
// so the new toxic delays them from then on.
func (l *link) retoxic(wg *sync.WaitGroup, t *toxics.ToxicWrapper) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.torn {
		t = noop
	}
	for _, stub := range l.stubs {
		if stub.InterruptToxic() { // false once the stub has closed
			wg.Go(func() { stub.Run(t) })
		}
	}
}
