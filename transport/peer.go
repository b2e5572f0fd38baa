package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// peer is our outbound side towards one member: its link, when up, and the
// dial and backoff state for when it is not.
type peer struct {
	t    *Transport
	name string
	addr string // the member's RPC address when the peer was made

	mu       sync.Mutex
	link     *clientLink
	dialing  chan struct{} // non-nil while a dial runs; closed when it ends
	lastErr  error
	failures int
	retryAt  time.Time   // no dial before this: fail fast instead
	wanted   bool        // a link was up and died unasked: keep redialling
	redial   *time.Timer // pending background redial
	closed   bool
}

// get returns a live link, dialling if needed. Errors wrap ErrNotSent.
func (p *peer) get(ctx context.Context) (*clientLink, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("%w: node %s left the cluster", ErrNotSent, p.name)
		}
		if l := p.link; l != nil && l.usable() {
			p.mu.Unlock()
			return l, nil
		}
		if p.dialing == nil {
			if wait := time.Until(p.retryAt); wait > 0 {
				err := p.lastErr
				p.mu.Unlock()
				return nil, fmt.Errorf("%w: node %s unreachable (next attempt in %v): %w", ErrNotSent, p.name, wait.Round(time.Millisecond), err)
			}
			p.startDialLocked()
		}
		ch := p.dialing
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: connecting to %s: %w", ErrNotSent, p.name, ctx.Err())
		}
	}
}

// startDialLocked starts a dial owned by the peer, not by the caller who
// asked for it, so that a caller giving up does not waste a half-made link
// that the next caller would want.
func (p *peer) startDialLocked() {
	p.dialing = make(chan struct{})
	p.t.wg.Add(1)
	go p.dial(p.dialing)
}

func (p *peer) dial(done chan struct{}) {
	defer p.t.wg.Done()
	l, err := p.t.dialLink(p)
	p.mu.Lock()
	defer close(done)
	p.dialing = nil
	if err == nil && p.closed {
		p.mu.Unlock()
		l.fail(fmt.Errorf("%w: node %s left the cluster", ErrNotSent, p.name))
		return
	}
	defer p.mu.Unlock()
	if err != nil {
		p.failures++
		p.lastErr = err
		p.retryAt = time.Now().Add(p.t.backoff(p.failures))
		p.t.log.Debug("transport: dial failed", "node", p.name, "addr", p.addr, "failures", p.failures, "err", err)
		if p.wanted {
			p.scheduleRedialLocked()
		}
		return
	}
	p.t.log.Debug("transport: link up", "node", p.name, "addr", p.addr, "rtt", l.RTT())
	p.link, p.failures, p.retryAt, p.lastErr, p.wanted = l, 0, time.Time{}, nil, true
}

// linkDown is called by a link that died. A link that died unasked is
// redialled in the background so the next call finds it warm.
func (p *peer) linkDown(l *clientLink, goaway bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != l && p.link != nil {
		return // an old link; a newer one is up
	}
	p.link = nil
	if goaway {
		p.wanted = false
	}
	if p.closed || !p.wanted || p.link != nil {
		return
	}
	p.scheduleRedialLocked()
}

func (p *peer) scheduleRedialLocked() {
	if p.redial != nil {
		return
	}
	p.redial = time.AfterFunc(p.t.backoff(p.failures+1), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.redial = nil
		if p.closed || p.link != nil || p.dialing != nil {
			return
		}
		p.retryAt = time.Time{}
		p.startDialLocked()
	})
}

// close ends the peer: no more dials or new requests. Its link is cut at
// once, or with drain set, when the requests in flight on it are answered —
// a member that leaves is still finishing them (and a dead one is caught by
// the link's own keep-alive).
func (p *peer) close(err error, drain bool) {
	p.mu.Lock()
	p.closed = true
	if p.redial != nil {
		p.redial.Stop()
		p.redial = nil
	}
	l := p.link
	p.link = nil
	p.mu.Unlock()
	switch {
	case l == nil:
	case drain:
		l.retire(err)
	default:
		l.fail(err)
	}
}

// rtt is the link's RTT, 0 without a link.
func (p *peer) rtt() time.Duration {
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l == nil {
		return 0
	}
	return l.RTT()
}

// backoff is the exponential, jittered delay before attempt n+1.
func (t *Transport) backoff(failures int) time.Duration {
	d := t.cfg.BackoffMin
	for i := 1; i < failures && d < t.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, t.cfg.BackoffMax)
	// Full jitter over the upper half: spreads reconnect storms yet keeps
	// the delay near its nominal value.
	return d/2 + rand.N(d/2+1)
}

// dialLink connects and authenticates to p's node.
func (t *Transport) dialLink(p *peer) (*clientLink, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	// Closing the connection is the only way to interrupt a handshake when
	// the transport shuts down mid-way.
	stop := context.AfterFunc(t.ctx, func() { _ = conn.Close() })
	defer stop()
	l, err := t.clientHandshake(conn, p)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%s: %w", p.addr, err)
	}
	if !t.trackLink(l, true) {
		_ = conn.Close()
		return nil, ErrClosed
	}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		l.writeLoop(l.ping, t.cfg.KeepAlive)
	}()
	go func() {
		defer t.wg.Done()
		l.fail(l.readLoop())
		t.trackLink(l, false)
	}()
	return l, nil
}

func (t *Transport) clientHandshake(conn net.Conn, p *peer) (*clientLink, error) {
	if err := conn.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	if t.cfg.TLS != nil {
		cfg := t.cfg.TLS.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(p.addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	fr := newFrameReader(conn, handshakeMaxFrame)
	rtt, err := clientHandshake(conn, fr, t.linkKey, t.name, p.name)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	fr.max = t.cfg.MaxFrameSize
	l := &clientLink{
		link:    newLink(conn, fr, t.cfg.IdleTimeout),
		peer:    p,
		start:   time.Now(),
		pending: make(map[uint64]*call),
	}
	l.rtt.Store(int64(rtt))
	return l, nil
}

// clientLink is an outbound link: it sends requests and matches responses.
type clientLink struct {
	*link
	peer  *peer
	start time.Time // ping timestamps are offsets from it
	rtt   atomic.Int64

	mu      sync.Mutex
	pending map[uint64]*call
	nextID  uint64
	goaway  bool
	dead    bool
}

// call is one request awaiting its answer.
type call struct {
	state atomic.Uint32
	done  chan struct{}
	resp  []byte
	err   error
}

func (l *clientLink) RTT() time.Duration { return time.Duration(l.rtt.Load()) }

func (l *clientLink) usable() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.dead && !l.goaway
}

func (l *clientLink) ping() *frameBuf {
	return encodeFrame(&frame{Type: framePing, ID: uint64(time.Since(l.start))})
}

// call sends one request and waits for its answer.
func (l *clientLink) call(ctx context.Context, method string, body []byte, maxFrame int) ([]byte, error) {
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, fmt.Errorf("%w: %w", ErrNotSent, context.DeadlineExceeded)
		}
	}
	c := &call{done: make(chan struct{})}
	l.mu.Lock()
	if l.dead || l.goaway {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: link to %s is closing", ErrNotSent, l.peer.name)
	}
	l.nextID++
	id := l.nextID
	l.pending[id] = c
	l.mu.Unlock()

	fb := encodeFrame(&frame{Type: frameRequest, ID: id, Method: method, Timeout: timeout, Body: body})
	if n := fb.payloadLen(); n > maxFrame {
		fb.free()
		l.forget(id)
		return nil, fmt.Errorf("%w: request of %d bytes, limit %d", ErrFrameTooLarge, n, maxFrame)
	}
	if err := l.enqueue(ctx, outFrame{buf: fb, state: &c.state}); err != nil {
		if l.forget(id) {
			return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		<-c.done // the link failed it concurrently
		return c.resp, c.err
	}
	select {
	case <-c.done:
		return c.resp, c.err
	case <-ctx.Done():
	}
	if !l.forget(id) {
		<-c.done // answered (or failed) meanwhile
		return c.resp, c.err
	}
	if c.state.CompareAndSwap(stateQueued, stateWithdrawn) {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ctx.Err())
	}
	// Written: tell the server to stop; its own copy of the deadline is the
	// backstop if this frame is dropped.
	l.tryEnqueue(encodeFrame(&frame{Type: frameCancel, ID: id}))
	return nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, ctx.Err())
}

// forget removes a pending call; false if the reader or fail got it first.
func (l *clientLink) forget(id uint64) bool {
	return l.take(id) != nil
}

func (l *clientLink) take(id uint64) *call {
	l.mu.Lock()
	c := l.pending[id]
	delete(l.pending, id)
	drained := c != nil && l.goaway && !l.dead && len(l.pending) == 0
	l.mu.Unlock()
	if drained {
		l.fail(errRetired)
	}
	return c
}

var errRetired = errors.New("link retired")

// retire takes no new requests and closes the link once those in flight
// are settled.
func (l *clientLink) retire(err error) {
	l.mu.Lock()
	l.goaway = true
	idle := len(l.pending) == 0
	l.mu.Unlock()
	if idle {
		l.fail(err)
	}
}

func (l *clientLink) readLoop() error {
	for {
		f, err := l.readFrame()
		if err != nil {
			return err
		}
		switch f.Type {
		case frameResponse, frameError, frameReject:
			c := l.take(f.ID)
			if c == nil {
				continue // its caller gave up
			}
			c.resp, c.err = l.result(f)
			close(c.done)
		case framePong:
			sample := time.Since(l.start) - time.Duration(f.ID)
			if sample >= 0 {
				// EWMA: smooth enough that one slow pong does not reorder
				// candidates, quick enough to follow a real change.
				old := time.Duration(l.rtt.Load())
				l.rtt.Store(int64(old - old/4 + sample/4))
			}
		case frameGoAway:
			l.peer.linkDown(l, true)
			l.retire(errRetired)
		default:
			return fmt.Errorf("%w: unexpected frame type %d from a server", errBadFrame, f.Type)
		}
	}
}

func (l *clientLink) result(f frame) ([]byte, error) {
	switch f.Type {
	case frameResponse:
		return f.Body, nil
	case frameReject:
		return nil, fmt.Errorf("%w: %s refused the request: %s", ErrNotSent, l.peer.name, f.Body)
	}
	switch f.Method {
	case errKindTooLarge:
		return nil, fmt.Errorf("%w: %s", ErrFrameTooLarge, f.Body)
	case errKindDeadline:
		return nil, &RemoteError{Message: string(f.Body), err: context.DeadlineExceeded}
	case errKindCanceled:
		return nil, &RemoteError{Message: string(f.Body), err: context.Canceled}
	}
	return nil, &RemoteError{Message: string(f.Body)}
}

// fail closes the link and settles every pending call: a request the writer
// never took is withdrawn (ErrNotSent); one it wrote has an unknown outcome.
func (l *clientLink) fail(err error) {
	l.close(err)
	l.mu.Lock()
	l.dead = true
	pending := l.pending
	l.pending = make(map[uint64]*call)
	l.mu.Unlock()
	if err == nil || errors.Is(err, io.EOF) {
		err = fmt.Errorf("connection closed by %s", l.peer.name)
	}
	for _, c := range pending {
		if c.state.CompareAndSwap(stateQueued, stateWithdrawn) {
			c.err = fmt.Errorf("%w: link to %s lost before sending: %w", ErrNotSent, l.peer.name, err)
		} else {
			c.err = fmt.Errorf("%w: link to %s lost: %w", ErrUnknownOutcome, l.peer.name, err)
		}
		close(c.done)
	}
	l.peer.linkDown(l, false)
}
