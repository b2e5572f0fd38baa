package flypg

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/flypg/flypg/internal/server"
	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
)

// procs maps names to procedures. Like database/sql's driver registry it is
// process-wide: every node of the app registers the same procedures at init,
// and a request names one.
var procs struct {
	sync.RWMutex
	m map[string]server.Proc
}

// RegisterProc registers fn under name, to be run on the primary by
// CallPrimary or on a node of a region by CallRegion. Register the same
// procedures in every node, typically from init. Req and Resp cross the link
// msgpack-encoded (exported fields, `msgpack` tags honoured). fn gets the
// serving node's local database through the wrapped driver, without routing:
// the primary, for CallPrimary. Registering a name twice panics, as
// sql.Register does.
func RegisterProc[Req, Resp any](name string, fn func(ctx context.Context, db *sql.DB, req Req) (Resp, error)) {
	if fn == nil {
		panic("flypg: RegisterProc " + name + " with a nil function")
	}
	procs.Lock()
	defer procs.Unlock()
	if procs.m == nil {
		procs.m = map[string]server.Proc{}
	}
	if _, dup := procs.m[name]; dup {
		panic("flypg: RegisterProc called twice for " + name)
	}
	procs.m[name] = func(ctx context.Context, db *sql.DB, body []byte) ([]byte, error) {
		var req Req
		if err := wire.UnmarshalWithin(body, &req, wire.UserLimits); err != nil {
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

func lookupProc(name string) server.Proc {
	procs.RLock()
	defer procs.RUnlock()
	return procs.m[name]
}

// CallPrimary runs the procedure registered as name next to the primary of
// the node's database, in one round trip, then waits until the local
// replica has replayed everything the procedure committed (unless ctx is
// NoAwait) — fly_postgres's rpc_and_wait. Use it for work that makes several
// statements: a loop of inserts costs one WAN round trip instead of one per
// statement. Where the local database is the primary it runs in this
// process.
//
// Errors mean what a write's do (DESIGN "Outcomes"): a PostgreSQL error from
// the procedure comes back as the wrapped driver's error type; a procedure's
// own error, a panic or an unknown name as *ProcError; with an *AwaitError or
// *CommittedError the procedure's answer is returned too.
func CallPrimary[Req, Resp any](ctx context.Context, n *Node, name string, req Req) (Resp, error) {
	return call[Req, Resp](ctx, n, "", true, name, req)
}

// CallRegion runs the procedure registered as name on a node in region and
// returns its answer without waiting for replication (fly_rpc's
// rpc_region). The procedure gets that node's own local database, whatever
// its role.
func CallRegion[Req, Resp any](ctx context.Context, n *Node, region, name string, req Req) (Resp, error) {
	return call[Req, Resp](ctx, n, region, false, name, req)
}

func call[Req, Resp any](ctx context.Context, n *Node, region string, primary bool, name string, req Req) (Resp, error) {
	var zero, resp Resp
	body, err := msgpack.Marshal(req)
	if err != nil {
		return zero, fmt.Errorf("flypg: procedure %s: encode request: %w", name, err)
	}
	p := &wire.Proc{Name: name, Body: body}
	if primary {
		id := n.self.id()
		p.DB = &id
	}
	res, node, err := n.callProc(ctx, region, primary, p)
	if err != nil {
		return zero, err
	}
	decode := func() error {
		if err := wire.UnmarshalWithin(res.Body, &resp, wire.UserLimits); err != nil {
			return fmt.Errorf("flypg: procedure %s: decode response: %w", name, err)
		}
		return nil
	}
	if res.Err != nil && !res.Committed {
		if primary && res.LSN != 0 {
			// What the procedure committed before failing is durable:
			// wait for it (best effort) before reporting the failure.
			_ = n.self.wait(ctx, lsn.LSN(res.LSN), false)
		}
		if err := n.backend.DecodeError(res.Err); err != nil {
			return zero, err
		}
		return zero, &ProcError{Proc: name, Node: node, Message: res.Err.Message}
	}
	if err := decode(); err != nil {
		return zero, err
	}
	if res.Committed {
		n.counters.committedUnknownLSN.Add(1)
		return resp, &CommittedError{Err: n.remoteError(ctx, res.Err)}
	}
	if !primary {
		return resp, nil
	}
	// The procedure committed (if it wrote): return its answer with any
	// error of the wait.
	if node == n.Name() {
		// It ran here, on the local primary: nothing to wait for.
		if t := tracked(ctx); t != nil {
			t.record(lsn.LSN(res.LSN))
		}
		return resp, nil
	}
	return resp, n.self.committed(ctx, lsn.LSN(res.LSN), func() result { return result{} })
}

// callProc sends a procedure call and gathers its answer. In dev mode, or
// for the primary when the local database is it, it runs here.
func (n *Node) callProc(ctx context.Context, region string, primary bool, p *wire.Proc) (*wire.ProcResult, string, error) {
	if n.transport == nil || primary && n.self.writable() || region == n.cfg.Region && !primary {
		return n.server.RunProc(ctx, n.self, p), n.Name(), nil
	}
	ctx, cancel := n.withRPCTimeout(ctx)
	defer cancel()
	var (
		rep *reply
		err error
	)
	if primary {
		rep, err = n.send(ctx, n.self, "", wire.MethodProc, p)
	} else {
		rep, err = n.sendRegion(ctx, region, wire.MethodProc, p)
	}
	if err != nil {
		return nil, "", err
	}
	defer rep.close()
	var body []byte
	for {
		var res wire.ProcResult
		if err := rep.next(ctx, n, &res); err != nil {
			return nil, rep.node, err
		}
		body = append(body, res.Body...)
		if !res.More {
			res.Body = body
			return &res, rep.node, nil
		}
	}
}
