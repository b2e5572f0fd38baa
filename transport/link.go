package transport

import (
	"bufio"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Request write states. A request can be withdrawn by its caller (context
// ended, link died) until the writer takes the frame that completes it; the
// two race with CompareAndSwap, so a request is either written or withdrawn,
// never both — which is what lets a caller tell ErrNotSent from
// ErrUnknownOutcome.
const (
	stateQueued uint32 = iota
	stateWritten
	stateWithdrawn
)

// outFrame is a frame waiting for the writer.
type outFrame struct {
	buf   *frameBuf
	state *atomic.Uint32 // nil for frames that cannot be withdrawn
	held  int            // bytes held in the link's write budget
}

// link is the part of an authenticated connection both ends share: the
// connection, its frame reader and its writer goroutine. Its owner (a
// clientLink or a ServerConn) runs the read loop.
type link struct {
	conn net.Conn
	fr   *frameReader
	out  chan outFrame
	done chan struct{}
	once sync.Once
	err  error // why the link closed; read only after done is closed
	idle time.Duration
	sess session
	// queued bounds the bytes waiting for the writer, so a slow peer costs
	// at most that much memory however many senders there are.
	queued byteBudget
}

const outQueue = 256

func newLink(conn net.Conn, fr *frameReader, idle time.Duration, sess session, maxQueued int) *link {
	l := &link{conn: conn, fr: fr, out: make(chan outFrame, outQueue), done: make(chan struct{}), idle: idle, sess: sess}
	l.queued.max = maxQueued
	return l
}

// close shuts the link down; it reports whether this call did it.
func (l *link) close(err error) bool {
	first := false
	l.once.Do(func() {
		l.err = err
		close(l.done)
		_ = l.conn.Close()
		first = true
	})
	return first
}

func (l *link) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// maxBody is the largest body one frame to the peer may carry with a method
// of n bytes.
func (l *link) maxBody(method int) int { return l.sess.peerMaxFrame - frameOverhead - method }

// enqueue hands a frame to the writer, waiting for room in the write budget
// and the queue. An error means it was not queued.
func (l *link) enqueue(ctx context.Context, f outFrame) error {
	n := f.buf.Len()
	if err := l.queued.acquire(ctx, l.done, n); err != nil {
		f.buf.free()
		if l.closed() {
			return l.err
		}
		return err
	}
	f.held = n
	select {
	case l.out <- f:
		return nil
	case <-l.done:
		l.queued.release(n)
		f.buf.free()
		return l.err
	case <-ctx.Done():
		l.queued.release(n)
		f.buf.free()
		return ctx.Err()
	}
}

// tryEnqueue queues a small frame only if that needs no waiting: for frames
// that are an optimisation (cancel, pong), where blocking the reader would be
// worse than dropping them.
func (l *link) tryEnqueue(fb *frameBuf) bool {
	select {
	case l.out <- outFrame{buf: fb}:
		return true
	default:
		fb.free()
		return false
	}
}

// readFrame reads the next frame, giving the peer IdleTimeout to send it.
func (l *link) readFrame() (frame, error) {
	if err := l.conn.SetReadDeadline(time.Now().Add(l.idle)); err != nil {
		return frame{}, err
	}
	return l.fr.read()
}

// writeLoop writes queued frames, batching whatever is queued into one flush,
// and, if ping is set, sends a ping whenever the interval passes.
func (l *link) writeLoop(ping func() *frameBuf, every time.Duration) {
	bw := bufio.NewWriterSize(l.conn, 32<<10)
	var tick <-chan time.Time
	if ping != nil {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	write := func(f outFrame) error {
		defer l.queued.release(f.held)
		defer f.buf.free()
		if f.state != nil && !f.state.CompareAndSwap(stateQueued, stateWritten) {
			return nil // withdrawn by its caller
		}
		_, err := bw.Write(f.buf.Bytes())
		return err
	}
	for {
		var err error
		select {
		case <-l.done:
			return
		case f := <-l.out:
			_ = l.conn.SetWriteDeadline(time.Now().Add(l.idle))
			err = write(f)
		batch:
			for err == nil {
				select {
				case f = <-l.out:
					err = write(f)
				default:
					break batch
				}
			}
		case <-tick:
			_ = l.conn.SetWriteDeadline(time.Now().Add(l.idle))
			err = write(outFrame{buf: ping()})
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			l.close(err)
			return
		}
	}
}

// byteBudget is a counting semaphore of bytes whose waiters can give up.
// One acquisition larger than the whole budget is let through when nothing
// else is held, so no frame waits forever.
type byteBudget struct {
	mu   sync.Mutex
	used int
	max  int
	wait chan struct{} // closed at the next release, if someone waits
}

func (b *byteBudget) acquire(ctx context.Context, done <-chan struct{}, n int) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		if b.wait == nil {
			b.wait = make(chan struct{})
		}
		w := b.wait
		b.mu.Unlock()
		select {
		case <-w:
		case <-done:
			return net.ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.wait != nil {
		close(b.wait)
		b.wait = nil
	}
	b.mu.Unlock()
}
