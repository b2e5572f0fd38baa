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
	// caller's deadline passes, or when the link dies. A returned error
	// reaches the caller as a *RemoteError; so does a panic, which the
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
	// Body is the caller's body; the handler owns it.
	Body []byte
	// Peer is the calling node's name, authenticated by the handshake.
	Peer string
	// Conn is the inbound link the request came on. State tied to a caller
	// (a remote transaction, say) should end when Conn.Done() is closed.
	Conn *ServerConn
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

	mu   sync.Mutex
	reqs map[uint64]context.CancelFunc
}

// ID identifies the link within this Transport.
func (c *ServerConn) ID() uint64 { return c.id }

// Peer is the calling node's name.
func (c *ServerConn) Peer() string { return c.peer }

// RemoteAddr is the caller's network address (nil for in-process calls).
func (c *ServerConn) RemoteAddr() net.Addr { return c.remote }

// Done is closed when the link dies or the Transport closes.
func (c *ServerConn) Done() <-chan struct{} { return c.done }

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
		select {
		case t.handshakes <- struct{}{}:
		default:
			t.log.Warn("transport: too many connections in the handshake; dropping one", "remote", conn.RemoteAddr())
			_ = conn.Close()
			continue
		}
		if !t.trackRaw(conn, true) {
			<-t.handshakes
			_ = conn.Close()
			return
		}
		t.wg.Add(1)
		go t.serveConn(conn)
	}
}

// serveConn authenticates an inbound connection and then serves it.
func (t *Transport) serveConn(conn net.Conn) {
	defer t.wg.Done()
	sc, err := t.acceptHandshake(conn)
	t.trackRaw(conn, false)
	<-t.handshakes
	if err != nil {
		t.log.Warn("transport: dropped an inbound connection that failed the handshake", "remote", conn.RemoteAddr(), "err", err)
		_ = conn.Close()
		return
	}
	if !t.trackConn(sc, true) {
		_ = conn.Close()
		return
	}
	t.log.Debug("transport: inbound link up", "peer", sc.peer, "conn", sc.id, "remote", sc.remote)
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

func (t *Transport) acceptHandshake(conn net.Conn) (*ServerConn, error) {
	if err := conn.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	if t.cfg.TLS != nil {
		tc := tls.Server(conn, t.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	fr := newFrameReader(conn, handshakeMaxFrame)
	peer, err := serverHandshake(conn, fr, t.linkKey, t.name)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	fr.max = t.cfg.MaxFrameSize
	return t.newServerConn(peer, conn.RemoteAddr(), newLink(conn, fr, t.cfg.IdleTimeout)), nil
}

func (t *Transport) newServerConn(peer string, remote net.Addr, l *link) *ServerConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &ServerConn{
		ctx:    ctx,
		cancel: cancel,
		id:     t.connIDs.Add(1),
		peer:   peer,
		remote: remote,
		done:   make(chan struct{}),
		t:      t,
		l:      l,
		reqs:   make(map[uint64]context.CancelFunc),
	}
}

// readLoop dispatches inbound frames until the link fails.
func (c *ServerConn) readLoop() error {
	for {
		f, err := c.l.readFrame()
		if err != nil {
			return err
		}
		switch f.Type {
		case frameRequest:
			if err := c.startRequest(f); err != nil {
				return err
			}
		case frameCancel:
			c.mu.Lock()
			cancel := c.reqs[f.ID]
			c.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		case framePing:
			c.l.tryEnqueue(encodeFrame(&frame{Type: framePong, ID: f.ID}))
		default:
			return fmt.Errorf("%w: unexpected frame type %d from a client", errBadFrame, f.Type)
		}
	}
}

func (c *ServerConn) reject(id uint64, reason string) {
	fb := encodeFrame(&frame{Type: frameReject, ID: id, Body: []byte(reason)})
	_ = c.l.enqueue(context.Background(), outFrame{buf: fb})
}

// startRequest runs a request in its own goroutine, or refuses it at once
// when the link is at its in-flight limit or the node is draining.
func (c *ServerConn) startRequest(f frame) error {
	c.mu.Lock()
	if _, dup := c.reqs[f.ID]; dup {
		c.mu.Unlock()
		return fmt.Errorf("%w: duplicate request id %d", errBadFrame, f.ID)
	}
	if len(c.reqs) >= c.t.cfg.MaxInFlight {
		c.mu.Unlock()
		c.reject(f.ID, fmt.Sprintf("node %s: too many requests in flight (limit %d)", c.t.name, c.t.cfg.MaxInFlight))
		return nil
	}
	if !c.t.serving.enter() {
		c.mu.Unlock()
		c.reject(f.ID, fmt.Sprintf("node %s is shutting down", c.t.name))
		return nil
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if f.Timeout > 0 {
		ctx, cancel = context.WithTimeout(c.ctx, f.Timeout)
	} else {
		ctx, cancel = context.WithCancel(c.ctx)
	}
	c.reqs[f.ID] = cancel
	c.mu.Unlock()

	c.t.wg.Add(1)
	go func() {
		defer c.t.wg.Done()
		defer c.t.serving.leave()
		resp, err := c.t.invoke(ctx, &Request{Method: f.Method, Body: f.Body, Peer: c.peer, Conn: c})
		c.mu.Lock()
		delete(c.reqs, f.ID)
		c.mu.Unlock()
		cancel()
		c.respond(ctx, f.ID, resp, err)
	}()
	return nil
}

func (c *ServerConn) respond(ctx context.Context, id uint64, resp []byte, err error) {
	var out frame
	if err != nil {
		kind := errKindHandler
		var re *RemoteError
		switch {
		case errors.As(err, &re) && re.err == errPanicked:
			kind = errKindPanic
			err = errors.New(re.Message)
		case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
			kind = errKindDeadline
		case errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled):
			kind = errKindCanceled
		}
		out = frame{Type: frameError, ID: id, Method: kind, Body: []byte(err.Error())}
	} else {
		out = frame{Type: frameResponse, ID: id, Body: resp}
	}
	fb := encodeFrame(&out)
	if fb.payloadLen() > c.t.cfg.MaxFrameSize {
		n := fb.payloadLen()
		fb.free()
		c.t.log.Error("transport: response too large; the handler ran but its answer is lost", "peer", c.peer, "bytes", n, "limit", c.t.cfg.MaxFrameSize)
		fb = encodeFrame(&frame{Type: frameError, ID: id, Method: errKindTooLarge,
			Body: fmt.Appendf(nil, "node %s: response of %d bytes exceeds the %d-byte frame limit (the handler ran)", c.t.name, n, c.t.cfg.MaxFrameSize)})
	}
	// A failure means the link is gone, and the caller learns that from it.
	_ = c.l.enqueue(context.Background(), outFrame{buf: fb})
}

// shutdown cancels every request still running on the link and marks it
// done, so the root can roll back whatever the caller had pinned here.
func (c *ServerConn) shutdown() {
	c.cancel()
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
