package server

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/flypg/flypg/internal/wire"
)

// proc serves MethodProc. A procedure called for the primary (p.DB set)
// runs on that database, which must be the primary here, and the answer
// carries the WAL position after it; one called by region runs on the
// node's own database, whatever its role. A body larger than one message
// goes out in several ProcResults, the last one final.
func (s *Server) proc(ctx context.Context, p *wire.Proc, w *reply) error {
	var t Target
	if p.DB != nil {
		var err error
		if t, err = s.cfg.Databases.Serve(*p.DB); err != nil {
			return err
		}
	} else {
		t = s.cfg.Databases.Local()
	}
	res := s.RunProc(ctx, t, p)
	for len(res.Body) > wire.MaxPartBytes {
		if err := w.send(&wire.ProcResult{Body: res.Body[:wire.MaxPartBytes], More: true}); err != nil {
			return err
		}
		res.Body = res.Body[wire.MaxPartBytes:]
	}
	return w.send(res)
}

// RunProc runs a procedure in this process, on t: what a dev-mode node
// does, having no cluster to send it to.
func (s *Server) RunProc(ctx context.Context, t Target, p *wire.Proc) (res *wire.ProcResult) {
	var fn Proc
	if s.cfg.Procs != nil {
		fn = s.cfg.Procs(p.Name)
	}
	if fn == nil {
		return &wire.ProcResult{Err: &wire.Error{Kind: wire.ErrProc, Message: fmt.Sprintf("no procedure registered as %q", p.Name)}}
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("flypg: procedure panicked", "proc", p.Name, "panic", r, "stack", string(debug.Stack()))
			res = &wire.ProcResult{Err: &wire.Error{Kind: wire.ErrProc, Message: fmt.Sprintf("panic: %v", r)}}
		}
	}()
	body, err := fn(ctx, t.Pool(), p.Body)
	if err != nil {
		e := s.cfg.Backend.EncodeError(err)
		if e == nil {
			e = &wire.Error{Kind: wire.ErrProc, Message: err.Error()}
		}
		res := &wire.ProcResult{Err: e}
		if p.DB != nil {
			// What it committed before failing is durable: the caller
			// waits for it before returning the error.
			if l, err := insertLSN(ctx, t.Pool()); err == nil {
				res.LSN = uint64(l)
			}
		}
		return res
	}
	res = &wire.ProcResult{Body: body}
	if p.DB != nil {
		s.runAfterCommit(ctx)
		// Whatever the procedure committed is at or before the insert
		// position now. If it cannot be read, the work is still done:
		// say so rather than report a failure.
		l, err := insertLSN(ctx, t.Pool())
		if err != nil && ctx.Err() == nil {
			l, err = insertLSN(ctx, t.Pool())
		}
		if err != nil {
			res.Committed = true
			res.Err = s.wireError(err)
		}
		res.LSN = uint64(l)
	}
	return res
}
