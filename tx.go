package flypg

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/transport"
)

var (
	errNoTxOptions = errors.New("flypg: the wrapped driver does not support transaction options")
	errNamedArgs   = errors.New("flypg: the wrapped driver does not support named arguments")
	errTxDone      = errors.New("flypg: remote transaction already committed or rolled back")
)

// localTx is a transaction on the local database: any transaction where
// the local copy is the primary, a read-only one elsewhere.
type localTx struct {
	conn  *conn
	inner driver.Tx
	ctx   context.Context // BeginTx's, for Track
}

func (t *localTx) Commit() error {
	t.conn.localTx = false
	if err := t.inner.Commit(); err != nil {
		return err
	}
	t.conn.trackCommit(t.ctx)
	return nil
}

func (t *localTx) Rollback() error {
	t.conn.localTx = false
	return t.inner.Rollback()
}

// Pipelined transactions send what they queued when this much has
// accumulated, whatever comes next.
const (
	maxQueued      = 1000
	maxQueuedBytes = 1 << 20
	// maxQueuedElems keeps a batch well within what a serving node decodes
	// (wire.DefaultLimits.MaxElems).
	maxQueuedElems = wire.DefaultLimitsMaxElems / 2
)

// remoteTx is a read-write transaction run on one primary connection of
// one serving node. Every statement in it goes there, in order; BEGIN
// rides with the first, so a transaction costs one round trip per
// statement plus the COMMIT — or, pipelined, one round trip per point
// where the app needs an answer.
type remoteTx struct {
	conn     *conn
	ctx      context.Context // BeginTx's: database/sql uses it until the end
	id       uint64
	opts     wire.TxOptions
	pipeline bool

	node  string // the serving node, once a batch has been sent
	begun bool   // a batch with BEGIN was sent: the transaction exists, or may
	done  bool

	rows   *remoteRows // the last query's rows, while they are read
	queue  []queued    // pipelined statements not yet sent
	qsize  int
	qelems int
	err    error // pipelined: the first error, which aborted the transaction
	// failed is why a statement failed before the transaction could be
	// opened on the primary (not sent, no primary, a lost describe): the
	// transaction cannot go on — with pgx its connection would be gone —
	// and must not be opened afresh by the next statement.
	failed error
}

type queued struct {
	st  *wire.Statement
	res *lazyResult
}

var _ driver.Tx = (*remoteTx)(nil)

func newRemoteTx(ctx context.Context, c *conn, opts driver.TxOptions) (*remoteTx, error) {
	// The serving node builds BEGIN; refuse what the driver would refuse
	// before anything is sent.
	if _, err := c.node().backend.BeginSQL(opts); err != nil {
		return nil, err
	}
	return &remoteTx{conn: c, ctx: ctx, id: c.node().txIDs.Add(1), pipeline: pipelined(ctx),
		opts: wire.TxOptions{Isolation: int(opts.Isolation), ReadOnly: opts.ReadOnly}}, nil
}

// send sends a batch of the transaction — BEGIN with the first, the queued
// statements ahead of stmts — and returns its reply.
func (t *remoteTx) send(ctx context.Context, stmts []*wire.Statement, end wire.TxControl) (*reply, int, error) {
	b := &wire.Batch{DB: t.conn.db.id(), Tx: t.id, End: end}
	if !t.begun {
		b.Begin = &t.opts
	}
	queued := len(t.queue)
	for _, q := range t.queue {
		b.Stmts = append(b.Stmts, *q.st)
	}
	for _, st := range stmts {
		b.Stmts = append(b.Stmts, *st)
	}
	n := t.conn.node()
	if t.begun && t.node == "" {
		return nil, 0, ErrTxGone // it was never opened
	}
	n.counters.forwarded.Add(int64(len(b.Stmts)))
	rep, err := n.send(ctx, t.conn.db, t.node, wire.MethodBatch, b)
	if err != nil {
		var sent *transport.SentError
		if !t.begun && errors.As(err, &sent) {
			// The first batch may have opened the transaction there:
			// Rollback must reach that node, which answers "gone" if it
			// did not.
			t.node, t.begun = sent.Node, true
		}
		if t.begun && errors.Is(err, ErrNoPrimary) {
			// Its node cannot be reached: the transaction is rolled back
			// there when the link's loss is noticed, if not already.
			return nil, 0, fmt.Errorf("%w: %w", ErrTxGone, err)
		}
		return nil, 0, err
	}
	if !t.begun {
		n.counters.transactions.Add(1)
	}
	t.node, t.begun = rep.node, true
	return rep, queued, nil
}

// open sends BEGIN alone (nothing is queued: a pipelined transaction's
// describe flushes its queue first, which opens it).
func (t *remoteTx) open(ctx context.Context) error {
	rep, queued, err := t.send(ctx, nil, wire.TxKeep)
	if err != nil {
		return err
	}
	defer rep.close()
	if _, err := t.settleQueued(ctx, rep, queued); err != nil {
		return err
	}
	for {
		var p wire.Part
		if err := rep.next(ctx, t.conn.node(), &p); err != nil {
			return err
		}
		if p.End != nil {
			return t.ended(ctx, p.End, nil)
		}
	}
}

// settleQueued reads the StmtEnds of the statements that were queued ahead
// of a batch. It returns the first error; the statements after it did not
// run.
func (t *remoteTx) settleQueued(ctx context.Context, rep *reply, queued int) (*wire.Part, error) {
	n := t.conn.node()
	q := t.queue
	t.queue, t.qsize, t.qelems = nil, 0, 0
	for i := 0; i < queued; {
		var p wire.Part
		if err := rep.next(ctx, n, &p); err != nil {
			if errors.Is(err, ErrUnknownOutcome) {
				// Some of the queued statements may have run in the
				// transaction: it must not commit now. It is rolled back.
				err = fmt.Errorf("%w: the answer to a pipelined batch was lost, so the transaction is rolled back: %w", ErrTxGone, err)
			}
			t.failedErr(err)
			t.failAll(q[i:], err)
			return nil, err
		}
		if p.Stmt != nil {
			if p.Stmt.Err != nil {
				err := n.remoteError(ctx, p.Stmt.Err)
				t.failedErr(err)
				t.failAll(q[i:], err)
				return &p, err
			}
			q[i].res.settle(p.Stmt.RowsAffected, nil)
			i++
		}
		if p.End != nil {
			err := t.ended(ctx, p.End, nil)
			t.failAll(q[i:], err)
			return &p, err
		}
	}
	return nil, nil
}

func (t *remoteTx) failAll(q []queued, err error) {
	for _, e := range q {
		e.res.settle(0, err)
	}
}

// failedErr records a pipelined transaction's first error.
func (t *remoteTx) failedErr(err error) {
	if t.pipeline && t.err == nil {
		t.err = err
	}
}

// ended handles the End of a batch that did not end the transaction.
func (t *remoteTx) ended(ctx context.Context, end *wire.End, stmtErr error) error {
	if end.Err != nil {
		err := t.conn.node().remoteError(ctx, end.Err)
		if !end.TxOpen {
			t.node = "" // there is no transaction to end
		}
		t.failedErr(err)
		if stmtErr != nil {
			return stmtErr
		}
		return err
	}
	if !end.TxOpen {
		t.node = ""
	}
	return stmtErr
}

// drain reads a reply to its end after an error, so nothing is left
// half-read.
func drain(ctx context.Context, n *Node, rep *reply) {
	for {
		var p wire.Part
		if rep.next(ctx, n, &p) != nil || p.End != nil {
			rep.close()
			return
		}
	}
}

func (t *remoteTx) check() error {
	if t.done {
		return errTxDone
	}
	if t.failed != nil {
		return t.failedError()
	}
	if t.rows != nil && !t.rows.done {
		return errConnBusy
	}
	return t.err
}

// failedError is what follows a statement that failed before the
// transaction was opened.
func (t *remoteTx) failedError() error {
	return fmt.Errorf("%w: an earlier statement failed before the transaction was opened on the primary, so it cannot go on: %w", ErrTxGone, t.failed)
}

// notOpened records err, a statement's failure, if the transaction was
// not opened by it.
func (t *remoteTx) notOpened(err error) {
	if t != nil && err != nil && !t.begun && t.failed == nil {
		t.failed = err
		t.failedErr(err) // pipelined: the first error, returned by Commit
	}
}

// errConnBusy is what pgx says when a statement is sent while the rows of
// the previous one are still being read.
var errConnBusy = errors.New("conn busy")

func (t *remoteTx) exec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	st, err := t.conn.prepare(ctx, query, args, false, t)
	if err != nil {
		return nil, err
	}
	if t.pipeline {
		if len(t.queue) > 0 && t.qelems+elems(st) > maxQueuedElems {
			_ = t.flush(ctx) // make room: the error is the statements' to report
		}
		res := &lazyResult{tx: t}
		t.queue = append(t.queue, queued{st: st, res: res})
		t.qsize += len(st.Query) + 64
		t.qelems += elems(st)
		if len(t.queue) >= maxQueued || t.qsize >= maxQueuedBytes || t.qelems >= maxQueuedElems {
			_ = t.flush(ctx) // the error is the statements' to report
		}
		return res, nil
	}
	rep, queued, err := t.send(ctx, []*wire.Statement{st}, wire.TxKeep)
	if err != nil {
		t.notOpened(err)
		return nil, err
	}
	defer rep.close()
	if _, err := t.settleQueued(ctx, rep, queued); err != nil {
		return nil, err
	}
	var affected int64
	var stmtErr error
	for {
		var p wire.Part
		if err := rep.next(ctx, t.conn.node(), &p); err != nil {
			return nil, err
		}
		if p.Stmt != nil {
			affected = p.Stmt.RowsAffected
			if p.Stmt.Err != nil {
				stmtErr = t.conn.node().remoteError(ctx, p.Stmt.Err)
			}
		}
		if p.End != nil {
			if err := t.ended(ctx, p.End, stmtErr); err != nil {
				return nil, err
			}
			return driver.RowsAffected(affected), nil
		}
	}
}

func (t *remoteTx) query(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	st, err := t.conn.prepare(ctx, query, args, true, t)
	if err != nil {
		return nil, err
	}
	rep, queued, err := t.send(ctx, []*wire.Statement{st}, wire.TxKeep)
	if err != nil {
		t.notOpened(err)
		return nil, err
	}
	if p, err := t.settleQueued(ctx, rep, queued); err != nil {
		if p == nil || p.End == nil {
			drain(ctx, t.conn.node(), rep)
		}
		rep.close()
		return nil, err
	}
	rows, err := newRemoteRows(ctx, t.conn, rep, false, t)
	if r, ok := rows.(*remoteRows); ok {
		t.rows = r
	}
	return rows, err
}

// flush sends the queued statements of a pipelined transaction.
func (t *remoteTx) flush(ctx context.Context) error {
	if len(t.queue) == 0 {
		return t.err
	}
	rep, queued, err := t.send(ctx, nil, wire.TxKeep)
	if err != nil {
		t.failAll(t.queue, err)
		t.queue, t.qsize, t.qelems = nil, 0, 0
		t.failedErr(err)
		return err
	}
	defer rep.close()
	p, err := t.settleQueued(ctx, rep, queued)
	if err != nil {
		if p == nil || p.End == nil {
			drain(ctx, t.conn.node(), rep)
		}
		return err
	}
	var end wire.Part
	if err := rep.next(ctx, t.conn.node(), &end); err != nil {
		return err
	}
	if end.End != nil {
		return t.ended(ctx, end.End, nil)
	}
	return nil
}

// Commit commits on the primary and then awaits the commit's replay, under
// BeginTx's context. A pipelined transaction sends what it queued with the
// COMMIT, in one round trip, and returns its first error, if any.
func (t *remoteTx) Commit() error {
	if t.done {
		return errTxDone
	}
	t.done = true
	t.conn.remoteTx = nil
	ctx := t.ctx
	if t.err != nil {
		t.rollback()
		return t.err
	}
	if t.failed != nil {
		t.rollback()
		return t.failedError()
	}
	if !t.begun && len(t.queue) == 0 {
		return nil // no statement ran: no transaction was opened
	}
	if t.begun && t.node == "" {
		return ErrTxGone
	}
	rep, queued, err := t.send(ctx, nil, wire.TxCommit)
	if err != nil {
		t.failAll(t.queue, err)
		if errors.Is(err, ErrUnknownOutcome) {
			return err
		}
		// The COMMIT never left (the caller's context ended first, or no
		// link): nothing committed, and database/sql will not call
		// Rollback after Commit, so roll back here rather than leave the
		// transaction holding locks until the idle timeout.
		t.rollback()
		if cerr := t.ctx.Err(); cerr != nil {
			return fmt.Errorf("%w (the COMMIT was not sent: %w)", ErrTxGone, cerr)
		}
		return err
	}
	defer rep.close()
	if p, err := t.settleQueued(ctx, rep, queued); err != nil {
		if p == nil || p.End == nil {
			drain(ctx, t.conn.node(), rep)
		}
		return err
	}
	for {
		var p wire.Part
		if err := rep.next(ctx, t.conn.node(), &p); err != nil {
			return err
		}
		if p.End == nil {
			continue
		}
		rep.close()
		if t.opts.ReadOnly && p.End.Err == nil {
			return nil // a read-only transaction committed nothing to wait for
		}
		return t.conn.db.finish(ctx, p.End, nil, func() result { return result{} })
	}
}

// Rollback rolls back on the primary; there is nothing to await.
func (t *remoteTx) Rollback() error {
	if t.done {
		return errTxDone
	}
	t.done = true
	t.conn.remoteTx = nil
	t.failAll(t.queue, errTxDone)
	t.queue = nil
	return t.rollback()
}

// rollback sends ROLLBACK, also when BeginTx's context has ended:
// database/sql rolls back when it does, and the rollback must still reach
// the primary, or the transaction would hold its connection and locks
// there until the idle timeout.
func (t *remoteTx) rollback() error {
	t.queue = nil
	if !t.begun || t.node == "" {
		return nil
	}
	n := t.conn.node()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), n.cfg.RPCTimeout)
	defer cancel()
	rep, err := n.send(ctx, t.conn.db, t.node, wire.MethodBatch, &wire.Batch{DB: t.conn.db.id(), Tx: t.id, End: wire.TxRollback})
	if err != nil {
		// A lost link rolls back every transaction on it; an unreachable
		// node has lost it or will.
		return nil
	}
	defer rep.close()
	for {
		var p wire.Part
		if err := rep.next(ctx, n, &p); err != nil {
			return nil
		}
		if p.End != nil {
			if p.End.Err != nil && p.End.Err.Kind != wire.ErrTxGone {
				return n.remoteError(ctx, p.End.Err)
			}
			return nil
		}
	}
}

func (t *remoteTx) String() string { return fmt.Sprintf("remote tx %d on %s", t.id, t.node) }

// lazyResult is a pipelined Exec's result: known once the statement has
// been sent, which asking for it forces.
type lazyResult struct {
	tx   *remoteTx
	done bool
	n    int64
	err  error
}

func (r *lazyResult) settle(n int64, err error) {
	if !r.done {
		r.done, r.n, r.err = true, n, err
	}
}

func (r *lazyResult) wait() {
	if !r.done {
		if err := r.tx.flush(r.tx.ctx); err != nil {
			r.settle(0, err)
		}
	}
}

// RowsAffected sends the queued statements if this one has not gone yet.
func (r *lazyResult) RowsAffected() (int64, error) {
	r.wait()
	return r.n, r.err
}

// LastInsertId is not supported, as with the wrapped driver (use
// RETURNING); it sends the queued statements first all the same.
func (r *lazyResult) LastInsertId() (int64, error) {
	r.wait()
	if r.err != nil {
		return 0, r.err
	}
	return driver.RowsAffected(r.n).LastInsertId()
}

// elems estimates the msgpack elements a statement adds to a batch.
func elems(st *wire.Statement) int {
	n := 8 + 5*len(st.Values)
	if p := st.Params; p != nil {
		n += len(p.OIDs) + len(p.Formats) + len(p.Values) + len(p.Results)
	}
	return n
}
