package flypg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/transport"
)

// reply is the reply stream of one forwarded request: messages decoded as
// the transport delivers them, so a large result never has to fit in one
// frame, or in memory at once.
type reply struct {
	node   string
	stream *transport.Stream
	r      *wire.Reader
	cancel context.CancelFunc
	done   bool

	obs    Observer
	obsCtx context.Context
	err    error // why the reply was cut short, for the Observer
}

// streamReader adapts a transport stream's chunks to an io.Reader.
type streamReader struct {
	s   *transport.Stream
	buf []byte
}

func (sr *streamReader) Read(p []byte) (int, error) {
	for len(sr.buf) == 0 {
		chunk, err := sr.s.Recv()
		if err != nil {
			return 0, err
		}
		sr.buf = chunk
	}
	n := copy(p, sr.buf)
	sr.buf = sr.buf[n:]
	return n, nil
}

// send sends a request for db — to node when set (a remote transaction's
// node), else to the best node whose copy of db is the primary — and
// returns its reply stream. Errors are flypg's sentinels: ErrNoPrimary
// when it was not sent anywhere, ErrUnknownOutcome when it was sent but
// the answer is lost.
func (n *Node) send(ctx context.Context, db *database, node, method string, body any) (*reply, error) {
	return n.open(ctx, node, n.primaryNodes(db), transport.ErrNoPrimary, method, body)
}

// sendRegion sends a request to a node of region.
func (n *Node) sendRegion(ctx context.Context, region, method string, body any) (*reply, error) {
	sel := func(ms []transport.Member) ([]transport.Member, string) {
		var out []transport.Member
		for _, m := range ms {
			if m.Region == region {
				out = append(out, m)
			}
		}
		return out, fmt.Sprintf("nodes of region %q", region)
	}
	return n.open(ctx, "", sel, transport.ErrNoNode, method, body)
}

func (n *Node) open(ctx context.Context, node string, sel transport.Selector, none error, method string, body any) (*reply, error) {
	b, err := wire.Marshal(body)
	if err != nil {
		return nil, err
	}
	obs := n.cfg.Observer
	if obs != nil {
		ctx = obs.ForwardStart(ctx, describeForward(method, body))
	}
	obsCtx := ctx
	ctx, cancel := n.withRPCTimeout(ctx)
	n.counters.roundTrips.Add(1)
	var s *transport.Stream
	if node != "" {
		s, err = n.transport.Open(ctx, node, method, b)
	} else {
		s, err = n.transport.OpenSelect(ctx, sel, none, method, b)
	}
	if err != nil {
		cancel()
		err = n.linkError(ctx, err)
		if obs != nil {
			obs.ForwardEnd(obsCtx, "", err)
		}
		return nil, err
	}
	return &reply{node: s.Node(), stream: s, r: wire.NewReader(&streamReader{s: s}), cancel: cancel, obs: obs, obsCtx: obsCtx}, nil
}

// describeForward summarises a request for the Observer.
func describeForward(method string, body any) Forward {
	f := Forward{Method: method}
	switch b := body.(type) {
	case *wire.Batch:
		f.Database, f.Statements, f.Read = b.DB.Name, len(b.Stmts), b.Read
		if len(b.Stmts) > 0 {
			f.Query = b.Stmts[len(b.Stmts)-1].Query
		}
	case *wire.Describe:
		f.Database, f.Query = b.DB.Name, b.Query
	case *wire.Proc:
		f.Query = b.Name
		if b.DB != nil {
			f.Database = b.DB.Name
		}
	case *wire.Ping:
		f.Database = b.DB.Name
	}
	return f
}

// next returns the next message of the reply into v. The reply ending
// before its last message, or the link failing mid-way, is an unknown
// outcome: the request was sent.
func (r *reply) next(ctx context.Context, n *Node, v any) (err error) {
	if err = r.r.Read(v); err == nil {
		return nil
	}
	defer func() {
		r.err = err
		r.close()
	}()
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	var re *transport.RemoteError
	if errors.As(err, &re) {
		// The handler failed as a whole (a panic, a malformed request):
		// it ran nothing it could report on.
		return fmt.Errorf("flypg: node %s: %w", r.node, err)
	}
	if errors.Is(err, wire.ErrMalformed) {
		return fmt.Errorf("%w: node %s sent a malformed reply: %w", ErrUnknownOutcome, r.node, err)
	}
	if lerr := n.linkError(ctx, err); lerr != err {
		return lerr
	}
	return fmt.Errorf("%w: reply from %s cut short: %w", ErrUnknownOutcome, r.node, err)
}

// close abandons the reply (cancelling the request on the serving node if
// it is still running) and releases it.
func (r *reply) close() {
	if r.done {
		return
	}
	r.done = true
	_ = r.stream.Close()
	r.cancel()
	if r.obs != nil {
		r.obs.ForwardEnd(r.obsCtx, r.node, r.err)
	}
}

// primaryContextError wraps a context error the serving node reported, with its
// message (which ends with that error's text already, and may open with
// "flypg: ").
func primaryContextError(msg string, err error) error {
	msg = strings.TrimSuffix(strings.TrimPrefix(msg, "flypg: "), ": "+err.Error())
	if msg == "" || msg == err.Error() {
		return fmt.Errorf("flypg: on the primary: %w", err)
	}
	return fmt.Errorf("flypg: on the primary: %s: %w", msg, err)
}

// remoteError rebuilds an error raised on the serving node: a PostgreSQL
// error as the wrapped driver's own type, returned bare (GORM type-asserts
// it); a cancellation as the caller's context error; the transaction's
// absence as ErrTxGone.
func (n *Node) remoteError(ctx context.Context, e *wire.Error) error {
	if err := n.backend.DecodeError(e); err != nil {
		return err
	}
	switch e.Kind {
	case wire.ErrCanceled, wire.ErrDeadline:
		// The two ends' clocks for one deadline differ by the link's
		// latency; whichever end noticed first, the caller sees a context
		// error.
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Kind == wire.ErrCanceled {
			return primaryContextError(e.Message, context.Canceled)
		}
		return primaryContextError(e.Message, context.DeadlineExceeded)
	case wire.ErrTxGone:
		// The serving node's message may say more (the primary connection
		// lost mid-transaction, and why); keep it after the sentinel.
		if detail, ok := strings.CutPrefix(e.Message, wire.TxGoneMessage); ok && strings.HasPrefix(detail, ": ") {
			return fmt.Errorf("%w%s", ErrTxGone, detail)
		}
		return ErrTxGone
	case wire.ErrUnknown:
		// A deadline that ended the statement on the serving node is the
		// caller's own (sent with the request, so it ends there no earlier
		// than here): the caller's context error is in the chain too — also
		// when the deadline has passed but the context's timer has not
		// fired yet (it runs on a goroutine of its own).
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnknownOutcome, e.Message, err)
		}
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return fmt.Errorf("%w: %s: %w", ErrUnknownOutcome, e.Message, context.DeadlineExceeded)
		}
		return fmt.Errorf("%w: %s", ErrUnknownOutcome, e.Message)
	}
	return fmt.Errorf("flypg: on the primary: %s", e.Message)
}
