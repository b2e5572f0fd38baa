package flypg

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
)

// procFunc is a registered procedure with its types erased.
type procFunc func(ctx context.Context, db *sql.DB, body []byte) ([]byte, error)

// procs maps names to procedures. Like database/sql's driver registry it is
// process-wide: every node of the app registers the same procedures at init,
// and a request names one.
var procs struct {
	sync.RWMutex
	m map[string]procFunc
}

// RegisterProc registers fn under name, to be run on a primary-region node by
// CallPrimary or on any node by CallRegion. Register the same procedures in
// every node, typically from init. Req and Resp cross the link msgpack-encoded
// (exported fields, `msgpack` tags honoured). fn gets the serving node's local
// database (the primary, for CallPrimary) through the wrapped driver, without
// routing. Registering a name twice panics, as sql.Register does.
func RegisterProc[Req, Resp any](name string, fn func(ctx context.Context, db *sql.DB, req Req) (Resp, error)) {
	if fn == nil {
		panic("flypg: RegisterProc " + name + " with a nil function")
	}
	procs.Lock()
	defer procs.Unlock()
	if procs.m == nil {
		procs.m = map[string]procFunc{}
	}
	if _, dup := procs.m[name]; dup {
		panic("flypg: RegisterProc called twice for " + name)
	}
	procs.m[name] = func(ctx context.Context, db *sql.DB, body []byte) ([]byte, error) {
		var req Req
		if err := msgpack.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("flypg: procedure %s: decode request: %w", name, err)
		}
		resp, err := fn(ctx, db, req)
		if err != nil {
			return nil, err
		}
		out, err := msgpack.Marshal(resp)
		if err != nil {
			return nil, fmt.Errorf("flypg: procedure %s: encode response: %w", name, err)
		}
		return out, nil
	}
}

func lookupProc(name string) procFunc {
	procs.RLock()
	defer procs.RUnlock()
	return procs.m[name]
}

// CallPrimary runs the procedure registered as name on a node in the primary
// region, in one round trip, then waits until the local replica has replayed
// everything the procedure committed (unless ctx is NoAwait) — fly_postgres's
// rpc_and_wait. Use it for work that makes several statements: a loop of
// inserts costs one WAN round trip instead of one per statement.
//
// A PostgreSQL error from the procedure comes back as the wrapped driver's
// error type (*pgconn.PgError); other errors as *ProcError.
func CallPrimary[Req, Resp any](ctx context.Context, n *Node, name string, req Req) (Resp, error) {
	var zero Resp
	body, err := msgpack.Marshal(req)
	if err != nil {
		return zero, fmt.Errorf("flypg: CallPrimary %s: encode request: %w", name, err)
	}
	res, err := n.callProc(ctx, "", name, body)
	if err != nil {
		return zero, err
	}
	if err := n.await(ctx, lsn.LSN(res.LSN)); err != nil {
		// The procedure committed: return its answer with the error.
		var resp Resp
		_ = msgpack.Unmarshal(res.Body, &resp)
		return resp, err
	}
	var resp Resp
	if err := msgpack.Unmarshal(res.Body, &resp); err != nil {
		return zero, fmt.Errorf("flypg: CallPrimary %s: decode response: %w", name, err)
	}
	return resp, nil
}

// CallRegion runs the procedure registered as name on a node in region and
// returns its answer without waiting for replication (fly_rpc's rpc_region).
func CallRegion[Req, Resp any](ctx context.Context, n *Node, region, name string, req Req) (Resp, error) {
	var zero Resp
	body, err := msgpack.Marshal(req)
	if err != nil {
		return zero, fmt.Errorf("flypg: CallRegion %s: encode request: %w", name, err)
	}
	res, err := n.callProc(ctx, region, name, body)
	if err != nil {
		return zero, err
	}
	var resp Resp
	if err := msgpack.Unmarshal(res.Body, &resp); err != nil {
		return zero, fmt.Errorf("flypg: CallRegion %s: decode response: %w", name, err)
	}
	return resp, nil
}

// ProcError is an error a procedure returned (other than a PostgreSQL
// error), a panic in it, or an unknown procedure name, as raised on the
// serving node.
type ProcError struct {
	Proc    string
	Node    string
	Message string
}

func (e *ProcError) Error() string {
	return fmt.Sprintf("flypg: procedure %s on node %s: %s", e.Proc, e.Node, e.Message)
}

// proc serves a procedure call.
func (s *server) proc(ctx context.Context, p *wire.Proc) (res *wire.ProcResult) {
	fn := lookupProc(p.Name)
	if fn == nil {
		return &wire.ProcResult{Err: &wire.Error{Kind: wire.ErrProc, Message: fmt.Sprintf("no procedure registered as %q", p.Name)}}
	}
	defer func() {
		if r := recover(); r != nil {
			s.node.cfg.Logger.Error("flypg: procedure panicked", "proc", p.Name, "panic", r, "stack", string(debug.Stack()))
			res = &wire.ProcResult{Err: &wire.Error{Kind: wire.ErrProc, Message: fmt.Sprintf("panic: %v", r)}}
		}
	}()
	body, err := fn(ctx, s.node.localDB(), p.Body)
	if err != nil {
		e := s.node.backend.encodeError(err)
		if e == nil {
			e = &wire.Error{Kind: wire.ErrProc, Message: err.Error()}
		}
		return &wire.ProcResult{Err: e}
	}
	out := &wire.ProcResult{Body: body}
	if s.node.localIsPrimary(ctx) {
		// Whatever the procedure committed is at or before the insert
		// position now.
		if out.LSN, err = insertLSN(ctx, s.node.localDB()); err != nil {
			return &wire.ProcResult{Err: s.wireError(ctx, err)}
		}
	}
	return out
}
