package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/transport"
)

// batch serves MethodBatch.
func (s *Server) batch(ctx context.Context, req *transport.Request, b *wire.Batch, w *reply) error {
	if b.Tx != 0 && b.Begin == nil {
		// A transaction this node holds is continued or ended here,
		// whatever its copy's role has become: declining its COMMIT or
		// ROLLBACK would leave it holding its locks until the idle timeout.
		return s.txBatch(ctx, req, nil, b, w)
	}
	t, err := s.cfg.Databases.Serve(b.DB)
	if err != nil {
		return err
	}
	if b.Tx != 0 {
		return s.txBatch(ctx, req, t, b, w)
	}
	if len(b.Stmts) != 1 || b.Begin != nil || b.End != wire.TxKeep {
		return w.send(&wire.Part{End: &wire.End{Err: &wire.Error{Kind: wire.ErrArgs,
			Message: fmt.Sprintf("flypg: an autocommit batch holds one statement, not %d", len(b.Stmts))}}})
	}
	return s.autocommit(ctx, t, &b.Stmts[0], b.Read, w)
}

// autocommit runs one statement in its own transaction on a pooled primary
// connection, then reads the commit position and the session's state on
// that same session.
func (s *Server) autocommit(ctx context.Context, t Target, st *wire.Statement, read bool, w *reply) error {
	c, n, err := s.run(ctx, t, st, read, w)
	if c == nil {
		if errors.Is(err, ErrDecline) {
			return err
		}
		// It waited for capacity until the deadline: nothing ran.
		return w.send(&wire.Part{End: &wire.End{Err: s.wireError(err)}})
	}
	defer c.Close()
	if err != nil {
		if e := s.refused(t, err, w); e != nil {
			return e
		}
		if s.cfg.Backend.Outcome(err) == backend.Broken {
			retire(c)
			return w.send(&wire.Part{End: &wire.End{Err: unknownOutcome(err)}})
		}
		// The statement failed, but its session may still hold what it
		// took before failing (a session lock survives the rollback), and a
		// procedure may have committed part of its work (CALL … COMMIT …
		// error): judge the session as on success, and report the position
		// so the caller can wait for whatever did commit.
		end := &wire.End{}
		sess, jerr := judge(ctx, s.cfg.Backend, c, !read)
		if jerr != nil || sess.stateful {
			retire(c)
		}
		if jerr == nil && mayCommitInside(st.Query) {
			// (Also when the session is retired for its state: what the
			// procedure committed before failing is awaited all the same.)
			end.LSN = uint64(sess.lsn)
		}
		return w.send(&wire.Part{Stmt: &wire.StmtEnd{Err: s.wireError(err)}, End: end})
	}
	if err := w.send(&wire.Part{Stmt: &wire.StmtEnd{RowsAffected: n}}); err != nil {
		retire(c) // the answer did not leave: neither judged nor reset
		return err
	}
	end := &wire.End{Committed: !read}
	if read {
		if sess, err := judge(ctx, s.cfg.Backend, c, false); err != nil || sess.stateful {
			retire(c)
		}
	} else {
		s.runAfterCommit(ctx)
		sess, ok, err := commitLSN(ctx, s.cfg.Backend, c, t.Pool())
		if sess.stateful {
			retire(c)
		}
		end.LSN, end.LostLocks = uint64(sess.lsn), sess.locks
		if !ok {
			end.Err = s.wireError(err)
		}
	}
	return w.send(&wire.Part{End: end})
}

// run runs st on a pooled connection. A pooled connection can be dead (the
// primary restarted since it was last used); when the statement provably
// never left, it runs once more on a fresh one. c is nil when no
// connection could be had; err then declines the request.
func (s *Server) run(ctx context.Context, t Target, st *wire.Statement, read bool, w *reply) (c *sql.Conn, n int64, err error) {
	for attempt := 0; ; attempt++ {
		if c, err = s.conn(ctx, t); err != nil {
			return nil, 0, err
		}
		if read {
			// A write is refused by a standby (25006), and declined; a read
			// is not, and a read sent here to be current (OnPrimary, an
			// AfterLSN fallback) must not be served by a copy demoted since
			// the last role check.
			if row, err := s.cfg.Backend.SimpleRow(ctx, c, "SELECT pg_catalog.pg_is_in_recovery()"); err == nil && len(row) == 1 && row[0] != nil && *row[0] == "t" {
				c.Close()
				t.NotPrimary()
				return nil, 0, fmt.Errorf("%w: database %s is no longer the primary here", ErrDecline, t.ID().Name)
			}
		}
		n, err = s.cfg.Backend.Exec(ctx, c, st, w.sendPart)
		if err == nil || attempt > 0 || s.cfg.Backend.Outcome(err) != backend.NotSent || ctx.Err() != nil {
			return c, n, err
		}
		retire(c)
		c.Close()
	}
}

// conn takes a primary connection, waiting for one until ctx ends: the
// pool's bound is back-pressure, not a failure. A primary that cannot be
// reached declines the request (nothing ran; another node may do better).
func (s *Server) conn(ctx context.Context, t Target) (*sql.Conn, error) {
	wctx, cancel := queueCtx(ctx)
	defer cancel()
	c, err := t.Pool().Conn(wctx)
	if err == nil {
		return c, nil
	}
	if wctx.Err() != nil {
		return nil, fmt.Errorf("flypg: waited for one of the %d primary connections this node serves with: %w", t.Pool().Stats().MaxOpenConnections, wctx.Err())
	}
	t.NotPrimary()
	return nil, fmt.Errorf("%w: no connection to the primary: %w", ErrDecline, err)
}

// queueCtx bounds a wait for capacity (a connection, a transaction slot) a
// little before the caller's deadline, so that the answer "it did not run"
// reaches the caller before its deadline does — where it would have to
// report an unknown outcome instead.
func queueCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(dl)/4, 250*time.Millisecond)
	return context.WithDeadline(ctx, dl.Add(-margin))
}

// refused declines a request whose statement the database refused as a
// standby would (SQLSTATE 25006): this node's copy stopped being the
// primary, nothing ran, and the caller should try the node that has it —
// unless part of the answer has already left.
func (s *Server) refused(t Target, err error, w *reply) error {
	if s.cfg.Backend.SQLState(err) != "25006" {
		return nil
	}
	t.NotPrimary()
	if w.flushed {
		return nil
	}
	return fmt.Errorf("%w: database %s is no longer the primary here: %w", ErrDecline, t.ID().Name, err)
}

// unknownOutcome is the answer when the primary connection failed after a
// statement or COMMIT was sent: it may have committed.
func unknownOutcome(err error) *wire.Error {
	return &wire.Error{Kind: wire.ErrUnknown,
		Message: fmt.Sprintf("flypg: the connection to the primary failed mid-statement; it may or may not have committed: %v", err)}
}

func (s *Server) runAfterCommit(ctx context.Context) {
	if f := s.afterCommit.Load(); f != nil {
		(*f)(ctx)
	}
}

// mayCommitInside reports a statement that may commit part of its work
// and still fail: CALL of a procedure, or DO, both of which can COMMIT
// inside. Any other failed statement rolled back whole.
func mayCommitInside(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	for _, kw := range []string{"call", "do"} {
		if len(q) > len(kw) && strings.EqualFold(q[:len(kw)], kw) && !isWordByte(q[len(kw)]) {
			return true
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
