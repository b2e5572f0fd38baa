package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// call is one request from the caller's side, and the response stream
// coming back for it: parts queue here until the consumer takes them. The
// link's reader pushes; one consumer (Call, or a Stream's Recv) pops.
type call struct {
	// state is the write state of the frame that completes the request.
	state atomic.Uint32
	l     *clientLink // nil for an in-process call
	id    uint64

	mu       sync.Mutex
	chunks   [][]byte
	unread   int   // bytes in chunks
	allowed  int64 // response bytes the server may send: window + credit
	received int64
	consumed int64 // taken since the last credit grant
	window   int64
	final    bool  // the final frame arrived, or the call failed
	err      error // with final: nil means io.EOF after the chunks
	wake     chan struct{}
	space    chan struct{} // in-process producers wait here for the consumer
}

func newCall(window int) *call {
	// space is for in-process producers only (openLocal makes it); a nil
	// channel is never ready, so signalling it is a no-op.
	return &call{window: int64(window), allowed: int64(window), wake: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues a part of the response. It fails if the server sent more
// than it was allowed: a protocol violation that costs the link.
func (c *call) push(b []byte) error {
	c.mu.Lock()
	if c.final {
		c.mu.Unlock()
		return nil
	}
	c.received += int64(len(b))
	if c.l != nil && c.received > c.allowed {
		c.mu.Unlock()
		return fmt.Errorf("%w: response %d: %d bytes sent, %d allowed", errBadFrame, c.id, c.received, c.allowed)
	}
	if len(b) > 0 {
		c.chunks = append(c.chunks, b)
		c.unread += len(b)
	}
	c.mu.Unlock()
	signal(c.wake)
	return nil
}

// finish settles the call: with a final part and err nil, or with err.
func (c *call) finish(b []byte, err error) {
	c.mu.Lock()
	if c.final {
		c.mu.Unlock()
		return
	}
	if len(b) > 0 {
		c.chunks = append(c.chunks, b)
		c.unread += len(b)
	}
	c.final, c.err = true, err
	c.mu.Unlock()
	signal(c.wake)
	signal(c.space)
}

// next returns the next part, io.EOF after the last, or the call's error;
// ok is false when nothing is there yet.
func (c *call) next() (b []byte, err error, ok bool) {
	c.mu.Lock()
	if len(c.chunks) > 0 {
		b = c.chunks[0]
		c.chunks[0] = nil
		c.chunks = c.chunks[1:]
		c.unread -= len(b)
		var grant int64
		if !c.final {
			c.consumed += int64(len(b))
			if c.consumed >= c.window/2 {
				grant, c.consumed = c.consumed, 0
				c.allowed += grant
			}
		}
		c.mu.Unlock()
		signal(c.space)
		if grant > 0 && c.l != nil {
			c.l.grant(c.id, grant)
		}
		return b, nil, true
	}
	defer c.mu.Unlock()
	if c.final {
		if c.err != nil {
			return nil, c.err, true
		}
		return nil, io.EOF, true
	}
	return nil, nil, false
}

// started reports whether anything arrived: a part, or the outcome.
func (c *call) started() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.final || len(c.chunks) > 0 || c.received > 0
}

// wait blocks until something arrives or ctx ends.
func (c *call) wait(ctx context.Context) error {
	select {
	case <-c.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abandon gives up on the call because of cause (ctx ended, or the consumer
// closed the stream) and returns the outcome error: not sent if the request
// never left, else unknown — unless the outcome arrived meanwhile.
func (c *call) abandon(cause error) (error, bool) {
	if c.l == nil {
		// In process the handler was started: it may have run.
		err := fmt.Errorf("%w: %w", ErrUnknownOutcome, cause)
		c.finish(nil, err)
		return err, true
	}
	if !c.l.forget(c.id) {
		return nil, false // settled concurrently: the consumer reads the outcome
	}
	c.mu.Lock()
	done := c.final
	c.mu.Unlock()
	if done {
		return nil, false
	}
	var err error
	if c.state.CompareAndSwap(stateQueued, stateWithdrawn) {
		err = fmt.Errorf("%w: %w", ErrNotSent, cause)
	} else {
		err = fmt.Errorf("%w: %w", ErrUnknownOutcome, cause)
	}
	// Tell the server to stop (or to drop a body still arriving); its own
	// copy of the deadline is the backstop if this frame is dropped.
	c.l.tryEnqueue(encodeFrame(&frame{Type: frameCancel, ID: c.id}))
	c.finish(nil, err)
	return err, true
}

// recv returns the next part, waiting under ctx.
func (c *call) recv(ctx context.Context) ([]byte, error) {
	for {
		if b, err, ok := c.next(); ok {
			return b, err
		}
		if err := c.wait(ctx); err != nil {
			if _, ok := c.abandon(err); !ok {
				<-c.wake // settled concurrently: the outcome is on its way
			}
		}
	}
}

// Stream is a response arriving in parts: the handler's Request.Send calls
// in order, then its return value. Memory is bounded by Config.StreamWindow
// however large the response: the server waits until the consumer has read
// enough. A Stream is for one goroutine.
type Stream struct {
	c      *call
	ctx    context.Context
	cancel context.CancelFunc // in-process streams: ends the handler
	node   string
	closed atomic.Bool
}

// Node is the node answering.
func (s *Stream) Node() string { return s.node }

// Recv returns the next part of the response, io.EOF after the last. A
// stream whose request was sent but whose final part never came ends with
// an error wrapping ErrUnknownOutcome (the handler may have run); a request
// that never left, ErrNotSent; a handler's error, a *RemoteError after the
// parts it sent. When the Open context ends, Recv fails with its error
// (wrapped as ErrUnknownOutcome) and the server is told to stop.
func (s *Stream) Recv() ([]byte, error) {
	if s.closed.Load() {
		return nil, errStreamClosed
	}
	return s.c.recv(s.ctx)
}

var errStreamClosed = errors.New("transport: stream closed")

// Close abandons the stream: an unfinished request is cancelled on the
// server, and whatever was buffered is dropped. It returns nil; calling it
// again does nothing.
func (s *Stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.c.abandon(errStreamClosed)
	if s.cancel != nil {
		s.cancel()
	}
	s.c.mu.Lock()
	s.c.chunks, s.c.unread = nil, 0
	s.c.mu.Unlock()
	signal(s.c.space)
	return nil
}

// readAll is Call's consumer: the whole response, at most limit bytes.
func (c *call) readAll(ctx context.Context, limit int) ([]byte, error) {
	first, err := c.recv(ctx)
	if err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	// An unstreamed response is a single part: hand it over as is.
	var out []byte
	for {
		b, err := c.recv(ctx)
		if err == io.EOF {
			if out == nil {
				return first, nil
			}
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = append(make([]byte, 0, 2*len(first)), first...)
		}
		if len(out)+len(b) > limit {
			c.abandon(errors.New("response too large")) // stop the server
			return nil, fmt.Errorf("%w: %w: the response exceeds MaxResponseSize (%d bytes); the handler ran and its answer was cut off: use Open to stream it", ErrFrameTooLarge, ErrUnknownOutcome, limit)
		}
		out = append(out, b...)
	}
}

// localSink takes the parts of an in-process streamed response.
type localSink struct {
	c *call
}

func (s localSink) send(ctx context.Context, b []byte) error {
	c := s.c
	for {
		c.mu.Lock()
		if c.final {
			c.mu.Unlock()
			return errStreamClosed
		}
		if c.unread == 0 || int64(c.unread+len(b)) <= c.window {
			c.chunks = append(c.chunks, append([]byte(nil), b...))
			c.unread += len(b)
			c.received += int64(len(b))
			c.mu.Unlock()
			signal(c.wake)
			return nil
		}
		c.mu.Unlock()
		select {
		case <-c.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// bufSink collects the parts of an in-process Call.
type bufSink struct {
	buf   *[]byte
	limit int
}

func (s bufSink) send(_ context.Context, b []byte) error {
	if len(*s.buf)+len(b) > s.limit {
		return fmt.Errorf("%w: the response exceeds MaxResponseSize (%d bytes): use Open to stream it", ErrFrameTooLarge, s.limit)
	}
	*s.buf = append(*s.buf, b...)
	return nil
}
