package flypg

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/transport"
)

// withRPCTimeout bounds a forwarded call whose caller set no deadline; a
// caller's own deadline covers forwarding and awaiting together.
func (n *Node) withRPCTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, n.cfg.RPCTimeout)
}

// call sends one request: to the named node, or to a primary-region node
// when node is "" (returning which one answered). Transport failures become
// flypg's sentinels.
func (n *Node) call(ctx context.Context, node, method string, body []byte) (string, []byte, error) {
	ctx, cancel := n.withRPCTimeout(ctx)
	defer cancel()
	var (
		resp []byte
		err  error
	)
	if node == "" {
		node, resp, err = n.transport.CallPrimary(ctx, method, body)
	} else {
		resp, err = n.transport.Call(ctx, node, method, body)
	}
	if err != nil {
		return node, nil, n.linkError(ctx, err)
	}
	return node, resp, nil
}

func (n *Node) linkError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, transport.ErrUnknownOutcome):
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	case errors.Is(err, transport.ErrNoPrimary):
		return fmt.Errorf("%w: %w", ErrNoPrimary, err)
	case errors.Is(err, transport.ErrNotSent) && ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ErrNoPrimary, err)
	}
	return err
}

// remoteError rebuilds an error raised on the primary-region node: a
// PostgreSQL error as the wrapped driver's own type, returned bare (GORM
// type-asserts it); a cancellation as the caller's context error.
func (n *Node) remoteError(ctx context.Context, e *wire.Error) error {
	if err := n.backend.decodeError(e); err != nil {
		return err
	}
	// The two ends' clocks for one deadline differ by the link's latency;
	// whichever end noticed first, the caller sees a context error.
	switch e.Kind {
	case wire.ErrCanceled, wire.ErrDeadline:
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Kind == wire.ErrCanceled {
			return fmt.Errorf("flypg: on the primary: %w", context.Canceled)
		}
		return fmt.Errorf("flypg: on the primary: %w", context.DeadlineExceeded)
	}
	if e.Kind == wire.ErrTxGone {
		return ErrTxGone
	}
	return fmt.Errorf("flypg: on the primary: %s", e.Message)
}

// await blocks until the local replica has replayed l, unless there is
// nothing to wait for: NoAwait, no LSN, or a local database that is itself
// writable (a "replica region" without a replica never times out).
func (n *Node) await(ctx context.Context, l lsn.LSN) error {
	if l == 0 {
		return nil
	}
	if noAwait(ctx) || n.tracker == nil || n.localIsPrimary(ctx) {
		n.counters.skipped.Add(1)
		return nil
	}
	n.counters.awaits.Add(1)
	wctx, cancel := context.WithTimeout(ctx, n.cfg.AwaitTimeout)
	defer cancel()
	start := time.Now()
	if err := n.tracker.Wait(wctx, l); err != nil {
		return &AwaitError{LSN: l, Waited: time.Since(start), Err: err}
	}
	return nil
}

// encodeArgs converts database/sql's arguments for the link, failing before
// anything is sent when one cannot be represented.
func encodeArgs(args []driver.NamedValue) ([]wire.Value, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make([]wire.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, fmt.Errorf("flypg: named argument %q: PostgreSQL takes positional arguments only", a.Name)
		}
		val := a.Value
		if t, ok := val.(time.Time); ok && t.Location() == time.Local {
			// The wrapped driver encodes a timestamp (without time zone)
			// from the wall clock: pin this node's offset, or the serving
			// node's time.Local would change the value.
			name, off := t.Zone()
			val = t.In(time.FixedZone(name, off))
		}
		v, err := wire.FromGo(val)
		if err != nil {
			return nil, fmt.Errorf("flypg: argument $%d: %w", a.Ordinal, err)
		}
		out[i] = v
	}
	return out, nil
}

// forward runs one statement on the primary (node "" picks one) and returns
// its result, with a PostgreSQL error rebuilt as the driver's own. A result
// that carries an error is returned too, for its transaction state.
func (n *Node) forward(ctx context.Context, node string, st *wire.Statement) (string, *wire.Result, error) {
	body, err := wire.Marshal(st)
	if err != nil {
		return "", nil, err
	}
	node, resp, err := n.call(ctx, node, wire.MethodExec, body)
	if err != nil {
		return node, nil, err
	}
	var res wire.Result
	if err := wire.Unmarshal(resp, &res); err != nil {
		return node, nil, err
	}
	if res.Err != nil {
		return node, &res, n.remoteError(ctx, res.Err)
	}
	return node, &res, nil
}

// callProc runs a registered procedure in region ("" = on the primary). In
// dev mode there is no cluster: it runs here.
func (n *Node) callProc(ctx context.Context, region, name string, body []byte) (*wire.ProcResult, error) {
	var (
		res  wire.ProcResult
		node = n.cfg.NodeName
	)
	if n.transport == nil {
		res = *n.server.proc(ctx, &wire.Proc{Name: name, Body: body})
	} else {
		req, err := wire.Marshal(&wire.Proc{Name: name, Body: body})
		if err != nil {
			return nil, err
		}
		ctx, cancel := n.withRPCTimeout(ctx)
		defer cancel()
		var resp []byte
		if region == "" {
			node, resp, err = n.transport.CallPrimary(ctx, wire.MethodProc, req)
		} else {
			node, resp, err = n.transport.CallRegion(ctx, region, wire.MethodProc, req)
		}
		if err != nil {
			return nil, n.linkError(ctx, err)
		}
		if err := wire.Unmarshal(resp, &res); err != nil {
			return nil, err
		}
	}
	if res.Err != nil {
		if err := n.backend.decodeError(res.Err); err != nil {
			return nil, err
		}
		return nil, &ProcError{Proc: name, Node: node, Message: res.Err.Message}
	}
	return &res, nil
}
