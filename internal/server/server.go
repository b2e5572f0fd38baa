// Package server is where a forwarded statement runs: the serving half of
// flypg, on a node whose local copy of a database is the primary. It takes
// the requests replica-region nodes send over the transport link —
// statements in autocommit, remote transactions, descriptions, registered
// procedures — runs them on the primary through the wrapped driver, and
// answers with their results, the commit's WAL position, and errors in a
// form the caller can rebuild exactly.
//
// What it promises its callers:
//
//   - A request names its database; it runs only on that database, and
//     only while this node's copy of it is the primary. Otherwise it is
//     declined before anything runs, so the caller tries another node.
//   - An answer never says "not committed" about a statement that
//     committed: a connection lost mid-statement is an unknown outcome, and
//     a commit whose WAL position cannot be read is reported committed.
//   - No session state a forwarded statement leaves on a primary
//     connection (settings, advisory locks, prepared statements, cursors,
//     temporary objects, LISTEN) reaches another caller: the session itself
//     is asked, in the same query that reads the commit position, and a
//     connection that holds any is closed instead of pooled.
//   - Capacity limits are back-pressure: a request waits for a primary
//     connection or a transaction slot until its caller's deadline.
package server

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/transport"
)

// Defaults for Config's zero fields.
const (
	DefaultMaxTxPerPeer  = 32
	DefaultTxIdleTimeout = time.Minute
)

// Config configures a Server.
type Config struct {
	Backend   backend.Backend
	Databases Catalog
	// Procs looks up a registered procedure (nil: none).
	Procs func(name string) Proc
	// MaxTxPerPeer bounds the remote transactions one caller node holds
	// open at once; more wait for a slot until their deadline. Default 32.
	MaxTxPerPeer int
	// TxIdleTimeout rolls back a remote transaction whose caller sent
	// nothing for this long since its last statement ended. Default 1 min.
	TxIdleTimeout time.Duration
	Logger        *slog.Logger
}

// Catalog resolves the databases a node serves.
type Catalog interface {
	// Serve returns the database id names when this node serves it and its
	// copy is the primary. Otherwise it returns an error wrapping
	// ErrDecline: nothing runs, and the caller tries elsewhere.
	Serve(id wire.DB) (Target, error)
	// Local returns the node's own database, whatever its role: a
	// procedure called by region runs on it.
	Local() Target
}

// Target is one database this node serves.
type Target interface {
	// Pool is its local copy through the wrapped driver, bounded in size.
	Pool() *sql.DB
	ID() wire.DB
	// NotPrimary reports that the copy refused a write as a standby
	// (SQLSTATE 25006) or could not be reached: the node re-checks its role
	// at once.
	NotPrimary()
}

// Proc is a registered procedure with its types erased.
type Proc func(ctx context.Context, db *sql.DB, body []byte) ([]byte, error)

// ErrDecline marks a request this node will not run, having run nothing of
// it; the caller tries another node.
var ErrDecline = transport.ErrDecline

// Server serves forwarded work. It implements transport.Handler.
type Server struct {
	cfg Config
	log *slog.Logger

	// afterCommit, when set, runs right after a forwarded write (autocommit
	// statement, COMMIT, procedure) committed and before its commit
	// position is read: fault-injection tests crash the primary there.
	afterCommit atomic.Pointer[func(context.Context)]

	mu      sync.Mutex
	txs     map[txKey]*remoteTx
	perPeer map[string]chan struct{}
	wg      sync.WaitGroup
	closed  bool
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.MaxTxPerPeer <= 0 {
		cfg.MaxTxPerPeer = DefaultMaxTxPerPeer
	}
	if cfg.TxIdleTimeout <= 0 {
		cfg.TxIdleTimeout = DefaultTxIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: cfg.Logger, txs: map[txKey]*remoteTx{}, perPeer: map[string]chan struct{}{}}
}

// SetAfterCommit installs a fault-injection hook (nil removes it): f runs
// after each forwarded write committed, before its position is read.
func (s *Server) SetAfterCommit(f func(context.Context)) {
	if f == nil {
		s.afterCommit.Store(nil)
		return
	}
	s.afterCommit.Store(&f)
}

// ServeRPC implements transport.Handler.
func (s *Server) ServeRPC(ctx context.Context, req *transport.Request) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("flypg: panic serving request", "method", req.Method, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("flypg: panic serving %s: %v", req.Method, p)
		}
	}()
	w := newReply(ctx, req)
	switch req.Method {
	case wire.MethodBatch:
		var b wire.Batch
		if err := wire.Unmarshal(req.Body, &b); err != nil {
			return nil, err
		}
		err = s.batch(ctx, req, &b, w)
	case wire.MethodDescribe:
		var d wire.Describe
		if err := wire.Unmarshal(req.Body, &d); err != nil {
			return nil, err
		}
		err = s.describe(ctx, req, &d, w)
	case wire.MethodPing:
		var p wire.Ping
		if err := wire.Unmarshal(req.Body, &p); err != nil {
			return nil, err
		}
		if _, err := s.cfg.Databases.Serve(p.DB); err != nil {
			return nil, err
		}
		return nil, nil
	case wire.MethodProc:
		var p wire.Proc
		if err := wire.Unmarshal(req.Body, &p); err != nil {
			return nil, err
		}
		err = s.proc(ctx, &p, w)
	default:
		return nil, fmt.Errorf("%w: unknown method %q", ErrDecline, req.Method)
	}
	if err != nil {
		return nil, err
	}
	return w.finish()
}

// reply is a handler's answer: messages on a byte stream, handed to the
// transport in pieces as they fill.
type reply struct {
	ctx     context.Context
	req     *transport.Request
	buf     bytes.Buffer
	w       *wire.Writer
	flushed bool // some of the answer has left: it can no longer be declined
}

func newReply(ctx context.Context, req *transport.Request) *reply {
	r := &reply{ctx: ctx, req: req}
	r.w = wire.NewWriter(&r.buf)
	return r
}

func (r *reply) send(v any) error {
	if err := r.w.Write(v); err != nil {
		return err
	}
	if r.buf.Len() < wire.MaxPartBytes {
		return nil
	}
	return r.flush()
}

func (r *reply) flush() error {
	if err := r.req.Send(r.ctx, r.buf.Bytes()); err != nil {
		return err
	}
	r.buf.Reset()
	r.flushed = true
	return nil
}

func (r *reply) finish() ([]byte, error) { return bytes.Clone(r.buf.Bytes()), nil }

// sendPart is reply.send for the backend's Exec.
func (r *reply) sendPart(p *wire.Part) error { return r.send(p) }

// Close rolls back every open remote transaction and waits for their
// watchers.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	keys := make([]txKey, 0, len(s.txs))
	for k := range s.txs {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		s.abort(k, "node closing")
	}
	s.wg.Wait()
}

// OpenTx is the number of open remote transactions.
func (s *Server) OpenTx() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.txs)
}

// wireError turns an error into its wire form; a PostgreSQL error keeps
// every field so the caller can rebuild the driver's own type.
func (s *Server) wireError(err error) *wire.Error {
	if e := s.cfg.Backend.EncodeError(err); e != nil {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &wire.Error{Kind: wire.ErrDeadline, Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &wire.Error{Kind: wire.ErrCanceled, Message: err.Error()}
	}
	return &wire.Error{Kind: wire.ErrOther, Message: err.Error()}
}
