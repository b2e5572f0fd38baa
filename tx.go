package flypg

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
)

var (
	errNoTxOptions = errors.New("flypg: the wrapped driver does not support transaction options")
	errNamedArgs   = errors.New("flypg: the wrapped driver does not support named arguments")
	errTxDone      = errors.New("flypg: remote transaction already committed or rolled back")
)

// localTx is a transaction on the local database: any transaction in the
// primary region or dev mode, a read-only one in a replica region.
type localTx struct {
	conn  *conn
	inner driver.Tx
}

func (t *localTx) Commit() error {
	t.conn.localTx = false
	return t.inner.Commit()
}

func (t *localTx) Rollback() error {
	t.conn.localTx = false
	return t.inner.Rollback()
}

// txIDs numbers remote transactions; with the link they run on, the id
// names one transaction on the serving node.
var txIDs atomic.Uint64

// remoteTx is a read-write transaction of a replica-region node, run on one
// primary connection of one primary-region node. Every statement in it goes
// there, in order; BEGIN rides with the first, so a transaction costs one
// round trip per statement plus the COMMIT.
type remoteTx struct {
	conn *conn
	ctx  context.Context // BeginTx's: database/sql uses it until the end
	id   uint64
	opts wire.TxOptions
	node string // the serving node, once the first statement has gone
	done bool
}

var _ driver.Tx = (*remoteTx)(nil)

func newRemoteTx(ctx context.Context, c *conn, opts driver.TxOptions) *remoteTx {
	return &remoteTx{conn: c, ctx: ctx, id: txIDs.Add(1),
		opts: wire.TxOptions{Isolation: int(opts.Isolation), ReadOnly: opts.ReadOnly}}
}

func (t *remoteTx) run(ctx context.Context, query string, args []driver.NamedValue, rows bool) (*wire.Result, error) {
	if t.done {
		return nil, errTxDone
	}
	wargs, err := encodeArgs(args)
	if err != nil {
		return nil, err
	}
	st := &wire.Statement{Query: query, Args: wargs, Rows: rows, Tx: t.id}
	if t.node == "" {
		st.Begin = &t.opts
	}
	t.conn.node.counters.forwarded.Add(1)
	node, res, err := t.conn.node.forward(ctx, t.node, st)
	if t.node == "" && (res != nil && res.TxOpen || errors.Is(err, ErrUnknownOutcome)) {
		// The transaction lives there now — or may: Rollback must reach
		// that node, which answers "gone" if nothing was opened.
		t.node = node
	}
	return res, err
}

func (t *remoteTx) exec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := t.run(ctx, query, args, false)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(res.RowsAffected), nil
}

func (t *remoteTx) query(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	res, err := t.run(ctx, query, args, true)
	if err != nil {
		return nil, err
	}
	return newRemoteRows(res), nil
}

// Commit commits on the primary and then awaits the commit's replay, under
// BeginTx's context.
func (t *remoteTx) Commit() error {
	l, err := t.end(true)
	if err != nil {
		return err
	}
	return t.conn.node.await(t.ctx, l)
}

// Rollback rolls back on the primary; there is nothing to await.
func (t *remoteTx) Rollback() error {
	_, err := t.end(false)
	return err
}

func (t *remoteTx) end(commit bool) (lsn.LSN, error) {
	if t.done {
		return 0, errTxDone
	}
	t.done = true
	t.conn.remoteTx = nil
	if t.node == "" {
		return 0, nil // no statement ran: no transaction was opened
	}
	body, err := wire.Marshal(&wire.TxEnd{Tx: t.id, Commit: commit})
	if err != nil {
		return 0, err
	}
	ctx := t.ctx
	if !commit && ctx.Err() != nil {
		// database/sql rolls back when BeginTx's context ends; the rollback
		// must still reach the primary, or the transaction would hold its
		// connection and locks there until the idle timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), t.conn.node.cfg.RPCTimeout)
		defer cancel()
	}
	_, resp, err := t.conn.node.call(ctx, t.node, wire.MethodTxEnd, body)
	if err != nil {
		if !commit && errors.Is(err, ErrUnknownOutcome) {
			// A rollback whose answer was lost still rolled back: the
			// serving node rolls back every transaction of a dead link.
			return 0, nil
		}
		if commit && !errors.Is(err, ErrUnknownOutcome) {
			// The COMMIT never left (the caller's context ended first, or
			// no link): nothing committed, and database/sql will not call
			// Rollback after Commit, so roll back here rather than leave
			// the transaction holding locks until the idle timeout.
			t.abandon()
			if cerr := t.ctx.Err(); cerr != nil {
				return 0, cerr
			}
		}
		return 0, err
	}
	var res wire.Result
	if err := wire.Unmarshal(resp, &res); err != nil {
		return 0, err
	}
	if res.Err != nil {
		if !commit && res.Err.Kind == wire.ErrTxGone {
			return 0, nil // already rolled back
		}
		return 0, t.conn.node.remoteError(ctx, res.Err)
	}
	return lsn.LSN(res.LSN), nil
}

// abandon sends a best-effort ROLLBACK for a transaction whose COMMIT was
// not sent.
func (t *remoteTx) abandon() {
	body, err := wire.Marshal(&wire.TxEnd{Tx: t.id, Commit: false})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), t.conn.node.cfg.RPCTimeout)
	defer cancel()
	_, _, _ = t.conn.node.call(ctx, t.node, wire.MethodTxEnd, body)
}

func (t *remoteTx) String() string { return fmt.Sprintf("remote tx %d on %s", t.id, t.node) }
