package flypg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"runtime/debug"
	"sync"
	"time"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/router"
	"github.com/flypg/flypg/transport"
)

const (
	// maxRemoteTxPerPeer caps the primary connections one caller node may
	// hold in open remote transactions, so a misbehaving region cannot
	// exhaust the primary's connection slots.
	maxRemoteTxPerPeer = 64
	// remoteTxIdleTimeout rolls back a remote transaction whose caller went
	// quiet without its link dying (a stuck goroutine holding a *sql.Tx).
	remoteTxIdleTimeout = time.Minute
)

// server runs the work replica-region nodes forward, on this node's local
// database, which must be the primary.
type server struct {
	node *Node

	mu      sync.Mutex
	txs     map[txKey]*serverTx
	perPeer map[string]int
	wg      sync.WaitGroup
	closed  bool
}

// txKey names a remote transaction: the caller's transaction id on one
// inbound link. A transaction never outlives its link.
type txKey struct {
	conn uint64
	tx   uint64
}

type serverTx struct {
	peer   string
	conn   *sql.Conn
	tx     *sql.Tx
	cancel context.CancelFunc // ends the transaction's lifetime: rollback
	mu     sync.Mutex         // one statement at a time, in order
	used   time.Time
	retire bool // a statement changed the session: close the connection, don't pool it
	done   chan struct{}
}

func newServer(n *Node) *server {
	return &server{node: n, txs: map[txKey]*serverTx{}, perPeer: map[string]int{}}
}

// ServeRPC implements transport.Handler.
func (s *server) ServeRPC(ctx context.Context, req *transport.Request) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.node.cfg.Logger.Error("flypg: panic serving request", "method", req.Method, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("flypg: panic serving %s: %v", req.Method, p)
		}
	}()
	switch req.Method {
	case wire.MethodExec:
		var st wire.Statement
		if err := wire.Unmarshal(req.Body, &st); err != nil {
			return nil, err
		}
		return marshalResult(s.exec(ctx, req, &st))
	case wire.MethodTxEnd:
		var end wire.TxEnd
		if err := wire.Unmarshal(req.Body, &end); err != nil {
			return nil, err
		}
		return wire.Marshal(s.endTx(ctx, req, end))
	case wire.MethodProc:
		var p wire.Proc
		if err := wire.Unmarshal(req.Body, &p); err != nil {
			return nil, err
		}
		return wire.Marshal(s.proc(ctx, &p))
	}
	return nil, fmt.Errorf("flypg: unknown method %q", req.Method)
}

// sessionStateRE matches statements that leave state on the session beyond
// their own run: session advisory locks, temporary objects, named prepared
// statements, holdable cursors. Matching a few extra statements (a word in
// a string) only costs a reconnect.
var sessionStateRE = regexp.MustCompile(`(?i)advisory_(lock|unlock)|\b(temp|temporary|prepare)\b|\bwith\s+hold\b`)

// leavesSessionState reports whether query may change its session for later
// statements: "SET …; INSERT …", a session advisory lock, a temp table. The
// pooled primary connection it ran on must not serve another caller then.
func (s *server) leavesSessionState(query string) bool {
	return s.node.classifier.Analyze(query).Has(router.Session) || sessionStateRE.MatchString(query)
}

// retire closes a pooled connection instead of returning it to the pool.
// DISCARD ALL would also drop the wrapped driver's prepared statements.
func retire(conn *sql.Conn) { _ = conn.Raw(func(any) error { return driver.ErrBadConn }) }

// resultLimit leaves room for the frame's envelope under the link's limit.
const resultLimit = transport.DefaultMaxFrameSize - 4096

// marshalResult encodes a statement's result. One too large for the link
// has already run — and, outside a transaction, committed — so the caller
// gets an error that says so, with the LSN, instead of a broken link.
func marshalResult(res *wire.Result) ([]byte, error) {
	out, err := wire.Marshal(res)
	if err != nil || len(out) <= resultLimit {
		return out, err
	}
	what := "ran in the remote transaction"
	if res.LSN != 0 {
		what = "committed on the primary at LSN " + lsn.LSN(res.LSN).String()
	}
	return wire.Marshal(&wire.Result{LSN: res.LSN, TxOpen: res.TxOpen, Err: &wire.Error{Kind: wire.ErrOther,
		Message: fmt.Sprintf("statement %s, but its result (%d bytes) exceeds the link's %d-byte limit: return fewer or smaller rows, or use CallPrimary",
			what, len(out), resultLimit)}})
}

// errorResult turns an error into its wire form; a PostgreSQL error keeps
// every field so the caller can rebuild the driver's own type.
func (s *server) wireError(ctx context.Context, err error) *wire.Error {
	if e := s.node.backend.encodeError(err); e != nil {
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

// querier is what a statement runs on: a pinned *sql.Conn in autocommit,
// or a remote transaction's *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *server) exec(ctx context.Context, req *transport.Request, st *wire.Statement) *wire.Result {
	args, err := decodeArgs(st.Args)
	if err != nil {
		return &wire.Result{Err: &wire.Error{Kind: wire.ErrOther, Message: err.Error()}}
	}
	if st.Tx != 0 {
		return s.execInTx(ctx, req, st, args)
	}
	// Autocommit: the statement and the LSN read share one session, so the
	// LSN is at or past the statement's commit record.
	conn, err := s.node.localDB().Conn(ctx)
	if err != nil {
		return &wire.Result{Err: s.wireError(ctx, err)}
	}
	defer conn.Close()
	res, err := run(ctx, conn, st, args)
	if err == nil {
		res.LSN, err = insertLSN(ctx, conn)
	}
	if s.leavesSessionState(st.Query) {
		retire(conn)
	}
	if err != nil {
		return &wire.Result{Err: s.wireError(ctx, err)}
	}
	return res
}

func run(ctx context.Context, q querier, st *wire.Statement, args []any) (*wire.Result, error) {
	if !st.Rows {
		r, err := q.ExecContext(ctx, st.Query, args...)
		if err != nil {
			return nil, err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return nil, err
		}
		return &wire.Result{RowsAffected: n}, nil
	}
	rows, err := q.QueryContext(ctx, st.Query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collectRows(rows)
}

func collectRows(rows *sql.Rows) (*wire.Result, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	res := &wire.Result{Columns: make([]wire.Column, len(cts))}
	for i, ct := range cts {
		c := wire.Column{Name: ct.Name(), DatabaseTypeName: ct.DatabaseTypeName(), ScanType: scanTypeName(ct.ScanType())}
		c.Length, c.HasLength = ct.Length()
		c.Precision, c.Scale, c.HasDecimal = ct.DecimalSize()
		c.Nullable, c.HasNullable = ct.Nullable()
		res.Columns[i] = c
	}
	vals := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]wire.Value, len(vals))
		for i, v := range vals {
			if row[i], err = wire.FromGo(v); err != nil {
				return nil, fmt.Errorf("flypg: result column %q: %w", cts[i].Name(), err)
			}
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// RowsAffected of a query is not observable through database/sql; the
	// row count is what a RETURNING caller can see.
	res.RowsAffected = int64(len(res.Rows))
	return res, nil
}

func decodeArgs(in []wire.Value) ([]any, error) {
	args := make([]any, len(in))
	for i, v := range in {
		a, err := v.Go()
		if err != nil {
			return nil, fmt.Errorf("flypg: argument $%d: %w", i+1, err)
		}
		args[i] = a
	}
	return args, nil
}

// insertLSN reads the primary's WAL insert position. The insert position,
// not pg_current_wal_lsn() (the write position), so that it covers a commit
// made with synchronous_commit=off that the WAL writer has not written yet.
func insertLSN(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (uint64, error) {
	var text string
	if err := q.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
		return 0, fmt.Errorf("flypg: read the primary's WAL position: %w", err)
	}
	l, err := lsn.Parse(text)
	return uint64(l), err
}
