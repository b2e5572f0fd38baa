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
// ended, link died) until the writer takes it; the two race with
// CompareAndSwap, so a request is either written or withdrawn, never both —
// which is what lets a caller tell ErrNotSent from ErrUnknownOutcome.
const (
	stateQueued uint32 = iota
	stateWritten
	stateWithdrawn
)

// outFrame is a frame waiting for the writer.
type outFrame struct {
	buf   *frameBuf
	state *atomic.Uint32 // nil for frames that cannot be withdrawn
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
}

const outQueue = 256

func newLink(conn net.Conn, fr *frameReader, idle time.Duration) *link {
	return &link{conn: conn, fr: fr, out: make(chan outFrame, outQueue), done: make(chan struct{}), idle: idle}
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

// enqueue hands a frame to the writer. An error means it was not queued.
func (l *link) enqueue(ctx context.Context, f outFrame) error {
	select {
	case l.out <- f:
		return nil
	case <-l.done:
		f.buf.free()
		return l.err
	case <-ctx.Done():
		f.buf.free()
		return ctx.Err()
	}
}

// tryEnqueue queues a frame only if that needs no waiting: for frames that
// are an optimisation (cancel, pong), where blocking the reader would be
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
