package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// The server's half of a response: parts sent against the caller's
// credit, then the final frame.

// serverReq is one running request: its cancellation and, for its
// response, the credit the caller granted.
type serverReq struct {
	c      *ServerConn
	id     uint64
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	credit int64
	wake   chan struct{} // closed when credit arrives, if someone waits
	v2buf  []byte        // version 2: Send's parts, returned with the final body
}

func (r *serverReq) addCredit(n int64) {
	r.mu.Lock()
	r.credit = min(r.credit+n, 1<<62)
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
}

// takeCredit waits until the caller lets us send n more bytes.
func (r *serverReq) takeCredit(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		if r.credit >= int64(n) {
			r.credit -= int64(n)
			r.mu.Unlock()
			return nil
		}
		if r.wake == nil {
			r.wake = make(chan struct{})
		}
		w := r.wake
		r.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.ctx.Done():
			return fmt.Errorf("transport: the caller went away: %w", r.ctx.Err())
		}
	}
}

// chunk is the largest data part the caller accepts in one frame.
func (r *serverReq) chunk() int {
	s := r.c.l.sess
	return max(1, min(r.c.t.cfg.ChunkSize, s.peerWindow, s.peerMaxFrame-frameOverhead))
}

// send implements sink for a remote caller.
func (r *serverReq) send(ctx context.Context, b []byte) error {
	if r.c.l.sess.version < 3 {
		// No streams on this link: the parts travel with the final body, in
		// one frame.
		if len(r.v2buf)+len(b) > r.c.l.maxBody(0) {
			return fmt.Errorf("%w: the caller's link (protocol version %d) carries responses of one frame, at most %d bytes", ErrFrameTooLarge, r.c.l.sess.version, r.c.l.maxBody(0))
		}
		r.v2buf = append(r.v2buf, b...)
		return nil
	}
	for len(b) > 0 {
		n := min(len(b), r.chunk())
		if err := r.sendPart(ctx, frameResponsePart, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (r *serverReq) sendPart(ctx context.Context, typ frameType, b []byte) error {
	if err := r.takeCredit(ctx, len(b)); err != nil {
		return err
	}
	fb := encodeFrame(&frame{Type: typ, ID: r.id, Body: b})
	if ctx == r.ctx {
		return r.c.l.enqueue(ctx, outFrame{buf: fb})
	}
	// Both a Send's ctx and the request's bound the wait for room on the
	// link: a caller that left frees the handler.
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	unhook := context.AfterFunc(r.ctx, cancel)
	defer unhook()
	return r.c.l.enqueue(mctx, outFrame{buf: fb})
}

// respond sends the handler's outcome: the final part of the response, or
// an error.
func (r *serverReq) respond(req *Request, resp []byte, err error) {
	c, ctx := r.c, r.ctx
	if err == nil {
		if r.v2buf != nil {
			resp = append(r.v2buf, resp...)
		}
		if c.l.sess.version >= 3 {
			for len(resp) > r.chunk() {
				n := r.chunk()
				if err := r.sendPart(ctx, frameResponsePart, resp[:n]); err != nil {
					return // the caller left or the link died: it knows
				}
				resp = resp[n:]
			}
			_ = r.sendPart(ctx, frameResponse, resp)
			return
		}
		if len(resp) <= c.l.maxBody(0) {
			_ = c.l.enqueue(context.Background(), outFrame{buf: encodeFrame(&frame{Type: frameResponse, ID: r.id, Body: resp})})
			return
		}
		n := len(resp)
		c.t.log.Error("transport: response too large; the handler ran but its answer is lost", "peer", c.peer, "bytes", n, "limit", c.l.maxBody(0))
		err = &tooLarge{fmt.Sprintf("node %s: response of %d bytes exceeds the caller's %d-byte frame limit on a protocol version %d link (the handler ran)", c.t.name, n, c.l.maxBody(0), c.l.sess.version)}
	}
	if errors.Is(err, ErrDecline) && !req.sent {
		c.reject(r.id, rejectKindDecline, err.Error())
		return
	}
	kind := errKindHandler
	var re *RemoteError
	var tl *tooLarge
	switch {
	case errors.As(err, &tl):
		kind = errKindTooLarge
	case errors.As(err, &re) && re.err == errPanicked:
		kind = errKindPanic
		err = errors.New(re.Message)
	case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
		kind = errKindDeadline
	case errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled):
		kind = errKindCanceled
	}
	msg := err.Error()
	if lim := c.l.maxBody(len(kind)); len(msg) > lim {
		msg = msg[:lim]
	}
	// A failure means the link is gone, and the caller learns that from it.
	_ = c.l.enqueue(context.Background(), outFrame{buf: encodeFrame(&frame{Type: frameError, ID: r.id, Method: kind, Body: []byte(msg)})})
}

type tooLarge struct{ msg string }

func (e *tooLarge) Error() string { return e.msg }
