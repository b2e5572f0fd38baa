package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// Handler serves requests arriving over the link.
type Handler interface {
	// ServeRPC runs one request. ctx ends when the caller cancels, when the
	// caller's deadline passes, or when the link dies. The returned bytes
	// are the response, or its final part after any req.Send. A returned
	// error reaches the caller as a *RemoteError (one wrapping ErrDecline,
	// before any Send, as ErrNotSent instead); so does a panic, which the
	// transport recovers from.
	ServeRPC(ctx context.Context, req *Request) ([]byte, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) ([]byte, error)

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(ctx context.Context, req *Request) ([]byte, error) { return f(ctx, req) }

// Request is one request as its Handler sees it.
type Request struct {
	Method string
	// Body is the caller's body, whole however many frames it took; the
	// handler owns it.
	Body []byte
	// Peer is the calling node's name, authenticated by the handshake.
	Peer string
	// Conn is the inbound link the request came on. State tied to a caller
	// (a remote transaction, say) should end when Conn.Done() is closed.
	Conn *ServerConn

	sink sink
	sent bool // a part of the response went out
}

// sink takes the parts of a streamed response.
type sink interface {
	send(ctx context.Context, chunk []byte) error
}

// Send sends the next part of the response before the handler returns, so
// that a large answer never has to sit in memory whole. It blocks while
// the caller has not consumed enough of what was sent before (flow control:
// the caller's window), and fails when ctx ends, when the caller gives up or
// the link dies. The transport copies chunk: the handler may reuse it once
// Send returns. The caller receives the parts in order, then the handler's
// return value as the last one (Stream.Recv; Call concatenates them). After
// a Send the request counts as answered: returning an error then reaches
// the caller as an error after the parts, never as ErrDecline. Send is not
// safe for concurrent use: parts from two goroutines would interleave.
func (r *Request) Send(ctx context.Context, chunk []byte) error {
	if r.sink == nil {
		return errors.New("transport: Send on a request the transport did not make")
	}
	if len(chunk) == 0 {
		return nil
	}
	r.sent = true
	return r.sink.send(ctx, chunk)
}

// ServerConn is one inbound link. Its ID is unique within the Transport.
type ServerConn struct {
	id     uint64
	peer   string
	remote net.Addr
	done   chan struct{}

	t *Transport
	l *link // nil for the in-process connection a node uses to call itself

	// ctx is the parent of every request's context: cancelled when the
	// link dies.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	reqs    map[uint64]*serverReq
	partial map[uint64]*assembly
}

// assembly is a request whose body arrives in parts.
type assembly struct {
	method   string
	timeout  time.Duration
	arrived  time.Time
	buf      []byte
	n        int64 // declared total
	got      int64
	reserved int64     // bytes held in the global budget
	deadline time.Time // when the whole body must be in, however it trickles
	timer    *time.Timer
}

// ID identifies the link within this Transport.
func (c *ServerConn) ID() uint64 { return c.id }

// Peer is the calling node's name.
func (c *ServerConn) Peer() string { return c.peer }

// RemoteAddr is the caller's network address (nil for in-process calls).
func (c *ServerConn) RemoteAddr() net.Addr { return c.remote }

// Done is closed when the link dies or the Transport closes.
func (c *ServerConn) Done() <-chan struct{} { return c.done }

// Version is the link protocol version the connection speaks
// (ProtocolVersion for in-process calls).
func (c *ServerConn) Version() int {
	if c.l == nil {
		return ProtocolVersion
	}
	return c.l.sess.version
}

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if t.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("transport: accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		e := t.preauth.add(conn)
		if e == nil {
			_ = conn.Close()
			return
		}
		t.wg.Add(1)
		go t.serveConn(conn, e)
	}
}

// serveConn authenticates an inbound connection and then serves it.
func (t *Transport) serveConn(conn net.Conn, e *preAuthConn) {
	defer t.wg.Done()
	sc, err := t.acceptHandshake(conn, e)
	t.preauth.done(e)
	if err != nil {
		// Unauthenticated peers are many and cheap: debug level, so a flood
		// cannot flood the logs too. Failed authentication (a node with
		// another secret, or an old version) is worth a warning — at most
		// one per authWarnInterval, saying how many it stands for, since
		// anyone who can connect can fail it at will.
		if (errors.Is(err, ErrAuth) || errors.Is(err, ErrIncompatible)) && t.authWarn.allow() {
			t.log.Warn("transport: dropped an inbound connection that failed the handshake", "remote", conn.RemoteAddr(), "err", err,
				"failed_since_last_warning", t.authWarn.take())
		} else {
			t.log.Debug("transport: dropped an inbound connection that failed the handshake", "remote", conn.RemoteAddr(), "err", err)
		}
		_ = conn.Close()
		return
	}
	if !t.trackConn(sc, true) {
		_ = conn.Close()
		return
	}
	t.log.Debug("transport: inbound link up", "peer", sc.peer, "conn", sc.id, "remote", sc.remote, "version", sc.l.sess.version)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		sc.l.writeLoop(nil, 0)
	}()
	err = sc.readLoop()
	sc.l.close(err)
	sc.shutdown()
	t.trackConn(sc, false)
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		t.log.Info("transport: inbound link lost", "peer", sc.peer, "conn", sc.id, "err", err)
	}
}

func (t *Transport) acceptHandshake(conn net.Conn, e *preAuthConn) (*ServerConn, error) {
	if err := conn.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	conn = &progressConn{Conn: conn, p: t.preauth, e: e}
	var binding []byte
	if !t.cfg.InsecurePlaintext {
		tc := tls.Server(conn, t.tlsServer)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		t.preauth.advance(e, stageTLS)
		var err error
		if binding, err = tlsBinding(tc); err != nil {
			return nil, err
		}
		conn = tc
	}
	fr := newFrameReader(conn, handshakeMaxFrame)
	hp := t.handshakeParams(binding)
	sess, err := serverHandshake(conn, fr, &hp)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	fr.max = t.cfg.MaxFrameSize
	fr.keep = max(keepReadBuf, t.cfg.ChunkSize+frameOverhead)
	return t.newServerConn(sess.peer, conn.RemoteAddr(), newLink(conn, fr, t.cfg.IdleTimeout, sess, t.cfg.MaxLinkBuffer)), nil
}

func (t *Transport) newServerConn(peer string, remote net.Addr, l *link) *ServerConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &ServerConn{
		ctx:     ctx,
		cancel:  cancel,
		id:      t.connIDs.Add(1),
		peer:    peer,
		remote:  remote,
		done:    make(chan struct{}),
		t:       t,
		l:       l,
		reqs:    make(map[uint64]*serverReq),
		partial: make(map[uint64]*assembly),
	}
}

// readLoop dispatches inbound frames until the link fails.
func (c *ServerConn) readLoop() error {
	for {
		f, err := c.l.readFrame()
		if err != nil {
			return err
		}
		if f.Type.v3Only() && c.l.sess.version < 3 {
			return fmt.Errorf("%w: frame type %d on a version %d link", errBadFrame, f.Type, c.l.sess.version)
		}
		switch f.Type {
		case frameRequest:
			if err := c.startRequest(f); err != nil {
				return err
			}
		case frameRequestPart:
			if err := c.addPart(f); err != nil {
				return err
			}
		case frameCancel:
			c.mu.Lock()
			r := c.reqs[f.ID]
			a := c.partial[f.ID]
			c.mu.Unlock()
			if r != nil {
				r.cancel()
			}
			if a != nil {
				c.dropPartial(f.ID, a)
			}
		case frameCredit:
			c.mu.Lock()
			r := c.reqs[f.ID]
			c.mu.Unlock()
			if r != nil {
				r.addCredit(f.N)
			}
		case framePing:
			c.l.tryEnqueue(encodeFrame(&frame{Type: framePong, ID: f.ID}))
		default:
			return fmt.Errorf("%w: unexpected frame type %d from a client", errBadFrame, f.Type)
		}
	}
}

func (c *ServerConn) reject(id uint64, kind, reason string) {
	fb := encodeFrame(&frame{Type: frameReject, ID: id, Method: kind, Body: []byte(reason)})
	_ = c.l.enqueue(context.Background(), outFrame{buf: fb})
}

// startRequest takes a request's first frame: it runs the request in its
// own goroutine once the body is whole, or refuses it at once when the link
// is at its in-flight limit, the body is too large for the global budget or
// the peer's share of it, or the node is draining. A refused request leaves
// nothing behind: its remaining parts are dropped as they come, like those
// of a cancelled one.
func (c *ServerConn) startRequest(f frame) error {
	total := f.N
	if total < int64(len(f.Body)) {
		return fmt.Errorf("%w: request %d declares %d bytes but carries %d", errBadFrame, f.ID, total, len(f.Body))
	}
	if total > int64(len(f.Body)) && c.l.sess.version < 3 {
		return fmt.Errorf("%w: request in parts on a version %d link", errBadFrame, c.l.sess.version)
	}
	t := c.t
	c.mu.Lock()
	if _, dup := c.reqs[f.ID]; dup {
		c.mu.Unlock()
		return fmt.Errorf("%w: duplicate request id %d", errBadFrame, f.ID)
	}
	if _, dup := c.partial[f.ID]; dup {
		c.mu.Unlock()
		return fmt.Errorf("%w: duplicate request id %d", errBadFrame, f.ID)
	}
	refuse := func(reason string) error {
		c.mu.Unlock()
		c.reject(f.ID, "", reason)
		return nil
	}
	if len(c.reqs)+len(c.partial) >= t.cfg.MaxInFlight {
		return refuse(fmt.Sprintf("node %s: too many requests in flight (limit %d)", t.name, t.cfg.MaxInFlight))
	}
	if total > int64(t.cfg.MaxRequestSize) {
		return refuse(fmt.Sprintf("node %s: request of %d bytes exceeds its limit of %d", t.name, total, t.cfg.MaxRequestSize))
	}
	if why := t.reserveBytes(c.peer, total); why != "" {
		return refuse(why)
	}
	if !t.serving.enter() {
		t.releaseBytes(c.peer, total)
		return refuse(fmt.Sprintf("node %s is shutting down", t.name))
	}
	if total == int64(len(f.Body)) {
		c.runLocked(f.ID, f.Method, f.Timeout, time.Now(), f.Body, total)
		c.mu.Unlock()
		return nil
	}
	buf := make([]byte, len(f.Body), total)
	copy(buf, f.Body)
	now := time.Now()
	a := &assembly{method: f.Method, timeout: f.Timeout, arrived: now, buf: buf, n: total, got: int64(len(f.Body)), reserved: total,
		deadline: now.Add(max(t.cfg.IdleTimeout, time.Duration(total/minBodyRate)*time.Second))}
	id := f.ID
	a.timer = time.AfterFunc(t.cfg.IdleTimeout, func() {
		if c.dropPartial(id, a) {
			// Tell the caller, who may still be sending: the request did
			// not run (not an unknown outcome at its deadline).
			c.reject(id, "", fmt.Sprintf("node %s: the request's body stalled or arrived too slowly (under %d bytes/s); dropped, not run", t.name, minBodyRate))
		}
	})
	c.partial[id] = a
	c.mu.Unlock()
	return nil
}

// minBodyRate is the slowest a request body may arrive on average, in
// bytes per second: a body whose parts stop coming for IdleTimeout is
// dropped, and so is one that trickles in slower than this (a part now and
// then resets the stall timer), so neither holds the budget for long. A
// 64 MiB body may take 4 minutes.
const minBodyRate = 256 << 10

// dropPartial forgets a body still arriving (cancelled or stalled); false
// if it was no longer there.
func (c *ServerConn) dropPartial(id uint64, a *assembly) bool {
	c.mu.Lock()
	if c.partial[id] != a {
		c.mu.Unlock()
		return false
	}
	delete(c.partial, id)
	c.mu.Unlock()
	a.timer.Stop()
	c.release(a.reserved)
	c.t.serving.leave()
	return true
}

// release gives back request bytes a request on this link held.
func (c *ServerConn) release(n int64) { c.t.releaseBytes(c.peer, n) }

// addPart adds a part to a body still arriving; the last one starts the
// request.
func (c *ServerConn) addPart(f frame) error {
	c.mu.Lock()
	a := c.partial[f.ID]
	if a == nil {
		c.mu.Unlock()
		return nil // dropped (cancelled or stalled); its parts may still come
	}
	if a.got+int64(len(f.Body)) > a.n {
		c.mu.Unlock()
		return fmt.Errorf("%w: request %d: parts exceed the declared %d bytes", errBadFrame, f.ID, a.n)
	}
	a.got += int64(len(f.Body))
	a.buf = append(a.buf, f.Body...)
	if a.got < a.n {
		a.timer.Reset(max(min(c.t.cfg.IdleTimeout, time.Until(a.deadline)), 0))
		c.mu.Unlock()
		return nil
	}
	delete(c.partial, f.ID)
	a.timer.Stop()
	c.runLocked(f.ID, a.method, a.timeout, a.arrived, a.buf, a.reserved)
	c.mu.Unlock()
	return nil
}

// runLocked starts the handler for a whole request; the caller holds c.mu
// and has entered the serving gate and reserved the body's bytes, which the
// request gives back when it ends.
func (c *ServerConn) runLocked(id uint64, method string, timeout time.Duration, arrived time.Time, body []byte, reserved int64) {
	var ctx context.Context
	var cancel context.CancelFunc
	if timeout > 0 {
		// The caller's remaining time, counted from the first frame's
		// arrival: transfer of later parts eats into it, as it does for
		// the caller.
		ctx, cancel = context.WithDeadline(c.ctx, arrived.Add(timeout))
	} else {
		ctx, cancel = context.WithCancel(c.ctx)
	}
	r := &serverReq{c: c, id: id, ctx: ctx, cancel: cancel, credit: int64(c.l.sess.peerWindow)}
	c.reqs[id] = r
	t := c.t
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.serving.leave()
		req := &Request{Method: method, Body: body, Peer: c.peer, Conn: c, sink: r}
		resp, err := t.invoke(ctx, req)
		c.release(reserved)
		r.respond(req, resp, err)
		c.mu.Lock()
		delete(c.reqs, id)
		c.mu.Unlock()
		cancel()
	}()
}

// shutdown cancels every request still running on the link, drops bodies
// still arriving, and marks it done, so the root can roll back whatever the
// caller had pinned here.
func (c *ServerConn) shutdown() {
	c.cancel()
	c.mu.Lock()
	partial := c.partial
	c.partial = make(map[uint64]*assembly)
	c.mu.Unlock()
	for _, a := range partial {
		a.timer.Stop()
		c.release(a.reserved)
		c.t.serving.leave()
	}
	close(c.done)
}

// goAway tells the client to send nothing new on this link.
func (c *ServerConn) goAway() {
	c.l.tryEnqueue(encodeFrame(&frame{Type: frameGoAway}))
}

// errPanicked marks a RemoteError that stands for a recovered panic.
var errPanicked = errors.New("handler panicked")

// invoke runs the handler, turning a panic into a RemoteError: a handler
// bug must cost one request, not the node.
func (t *Transport) invoke(ctx context.Context, req *Request) (resp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("transport: handler panicked", "method", req.Method, "peer", req.Peer, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, &RemoteError{Message: fmt.Sprintf("node %s: handler for %q panicked: %v", t.name, req.Method, r), err: errPanicked}
		}
	}()
	return t.handler.ServeRPC(ctx, req)
}

// reserveBytes takes n bytes of the request budget for peer, or says why
// not. One peer — over all its links — may hold half the budget, so that
// one buggy node cannot starve the others. (A node that holds the secret
// can claim any name, so this does not stop a malicious one.)
func (t *Transport) reserveBytes(peer string, n int64) (refused string) {
	t.bytesMu.Lock()
	defer t.bytesMu.Unlock()
	if held := t.peerBytes[peer]; held > 0 && held+n > t.cfg.MaxInFlightBytes/2 {
		return fmt.Sprintf("node %s: too many request bytes in flight from %s (limit %d)", t.name, peer, t.cfg.MaxInFlightBytes/2)
	}
	if t.bytesInFlight+n > t.cfg.MaxInFlightBytes && t.bytesInFlight > 0 {
		return fmt.Sprintf("node %s: too many request bytes in flight (limit %d)", t.name, t.cfg.MaxInFlightBytes)
	}
	t.bytesInFlight += n
	if t.peerBytes == nil {
		t.peerBytes = make(map[string]int64)
	}
	t.peerBytes[peer] += n
	return ""
}

func (t *Transport) releaseBytes(peer string, n int64) {
	t.bytesMu.Lock()
	t.bytesInFlight -= n
	if t.peerBytes[peer] -= n; t.peerBytes[peer] <= 0 {
		delete(t.peerBytes, peer)
	}
	t.bytesMu.Unlock()
}

// authWarnInterval spaces the warnings about failed handshakes.
const authWarnInterval = 10 * time.Second

// warnLimiter lets one warning through per authWarnInterval and counts the
// failures in between.
type warnLimiter struct {
	mu     sync.Mutex
	next   time.Time
	failed int
}

// allow counts a failure and reports whether it may be logged as a warning.
func (w *warnLimiter) allow() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failed++
	now := time.Now()
	if now.Before(w.next) {
		return false
	}
	w.next = now.Add(authWarnInterval)
	return true
}

// take returns the failures counted since the last warning, including the
// one being logged, and resets the count.
func (w *warnLimiter) take() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.failed
	w.failed = 0
	return n
}
