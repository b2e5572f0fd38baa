package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

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

func (l *clientLink) RTT() time.Duration { return time.Duration(l.rtt.Load()) }

func (l *clientLink) usable() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.dead && !l.goaway
}

func (l *clientLink) ping() *frameBuf {
	return encodeFrame(&frame{Type: framePing, ID: uint64(time.Since(l.start))})
}

// checkRequest refuses, before anything is sent, a request this link
// cannot carry.
func (l *clientLink) checkRequest(method string, n int) error {
	s := l.sess
	switch {
	case len(method) > l.maxBody(0)/2:
		return fmt.Errorf("%w: %w: method name of %d bytes", ErrNotSent, ErrFrameTooLarge, len(method))
	case s.peerMaxRequest > 0 && n > s.peerMaxRequest:
		return fmt.Errorf("%w: %w: request of %d bytes exceeds node %s's limit of %d", ErrNotSent, ErrFrameTooLarge, n, l.peer.name, s.peerMaxRequest)
	case s.version < 3 && n > l.maxBody(len(method)):
		return fmt.Errorf("%w: %w: request of %d bytes does not fit one frame (%d bytes), and node %s speaks protocol version %d, which has no requests in parts",
			ErrNotSent, ErrFrameTooLarge, n, l.maxBody(len(method)), l.peer.name, s.version)
	}
	return nil
}

// open sends one request and returns its call, whose response arrives
// later. The body goes in one frame if it fits, else in parts of at most
// chunk bytes: the request counts as sent only once its last part is
// written, because the server runs nothing before it has them all.
func (l *clientLink) open(ctx context.Context, method string, body []byte, chunk, window int) (*call, error) {
	if err := l.checkRequest(method, len(body)); err != nil {
		return nil, err
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, fmt.Errorf("%w: %w", ErrNotSent, context.DeadlineExceeded)
		}
	}
	c := newCall(window)
	c.l = l
	l.mu.Lock()
	if l.dead || l.goaway {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: link to %s is closing", ErrNotSent, l.peer.name)
	}
	l.nextID++
	id := l.nextID
	c.id = id
	l.pending[id] = c
	l.mu.Unlock()

	chunk = max(1, min(chunk, l.maxBody(0)))
	first := min(len(body), max(1, min(chunk, l.maxBody(len(method)))))
	f := &frame{Type: frameRequest, ID: id, Method: method, Timeout: timeout, N: int64(len(body)), Body: body[:first]}
	sentParts := false
	for off := 0; ; {
		last := off+len(f.Body) == len(body)
		of := outFrame{buf: encodeFrame(f)}
		if last {
			of.state = &c.state
		}
		if err := l.enqueue(ctx, of); err != nil {
			if !l.forget(id) {
				// The link failed it concurrently, or the server refused the
				// request at its first part.
				return c, nil
			}
			if sentParts {
				l.tryEnqueue(encodeFrame(&frame{Type: frameCancel, ID: id}))
			}
			return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		off += len(f.Body)
		if last {
			return c, nil
		}
		sentParts = true
		c.mu.Lock()
		refused := c.final
		c.mu.Unlock()
		if refused {
			l.tryEnqueue(encodeFrame(&frame{Type: frameCancel, ID: id}))
			return c, nil
		}
		f = &frame{Type: frameRequestPart, ID: id, Body: body[off:min(len(body), off+chunk)]}
	}
}

// grant gives the server credit for n more bytes of response id.
func (l *clientLink) grant(id uint64, n int64) {
	_ = l.enqueue(context.Background(), outFrame{buf: encodeFrame(&frame{Type: frameCredit, ID: id, N: n})})
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

func (l *clientLink) get(id uint64) *call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending[id]
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
		if f.Type.v3Only() && l.sess.version < 3 {
			return fmt.Errorf("%w: frame type %d on a version %d link", errBadFrame, f.Type, l.sess.version)
		}
		switch f.Type {
		case frameResponsePart:
			if c := l.get(f.ID); c != nil {
				if err := c.push(f.Body); err != nil {
					return err
				}
			}
		case frameResponse:
			c := l.take(f.ID)
			if c == nil {
				continue // its caller gave up
			}
			c.mu.Lock()
			over := c.received+int64(len(f.Body)) > c.allowed
			c.mu.Unlock()
			if over {
				return fmt.Errorf("%w: response %d exceeds its window", errBadFrame, f.ID)
			}
			c.finish(f.Body, nil)
		case frameError, frameReject:
			if c := l.take(f.ID); c != nil {
				c.finish(nil, l.result(f))
			}
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

func (l *clientLink) result(f frame) error {
	if f.Type == frameReject {
		if f.Method == rejectKindDecline {
			return fmt.Errorf("%w: %w: %s: %s", ErrNotSent, ErrDecline, l.peer.name, f.Body)
		}
		return fmt.Errorf("%w: %s refused the request: %s", ErrNotSent, l.peer.name, f.Body)
	}
	switch f.Method {
	case errKindTooLarge:
		return fmt.Errorf("%w: %w: %s", ErrFrameTooLarge, ErrUnknownOutcome, f.Body)
	case errKindDeadline:
		return &RemoteError{Message: string(f.Body), err: context.DeadlineExceeded}
	case errKindCanceled:
		return &RemoteError{Message: string(f.Body), err: context.Canceled}
	}
	return &RemoteError{Message: string(f.Body)}
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
			c.finish(nil, fmt.Errorf("%w: link to %s lost before sending: %w", ErrNotSent, l.peer.name, err))
		} else {
			c.finish(nil, fmt.Errorf("%w: link to %s lost: %w", ErrUnknownOutcome, l.peer.name, err))
		}
	}
	l.peer.linkDown(l, false)
}
