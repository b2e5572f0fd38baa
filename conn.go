package flypg

import (
	"context"
	"database/sql/driver"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/router"
)

// conn wraps one connection of the wrapped driver to the local database. In
// dev mode and in the primary region every call goes straight through;
// routing decisions are made per call, so the wrapper costs a branch.
type conn struct {
	node  *Node
	inner driver.Conn

	// At most one transaction is open on a connection (database/sql
	// guarantees it): a local one, or a remote one on the primary.
	localTx  bool
	remoteTx *remoteTx

	// The wrapped connection's optional interfaces, asserted once.
	beginTx   driver.ConnBeginTx
	prepareCx driver.ConnPrepareContext
	execer    driver.ExecerContext
	queryer   driver.QueryerContext
	checker   driver.NamedValueChecker
	pinger    driver.Pinger
	resetter  driver.SessionResetter
	validator driver.Validator
}

// The wrapper offers every optional interface; where the wrapped connection
// lacks one, it answers as database/sql would without it (ErrSkip, defaults).
var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
)

func newConn(n *Node, inner driver.Conn) *conn {
	c := &conn{node: n, inner: inner}
	c.beginTx, _ = inner.(driver.ConnBeginTx)
	c.prepareCx, _ = inner.(driver.ConnPrepareContext)
	c.execer, _ = inner.(driver.ExecerContext)
	c.queryer, _ = inner.(driver.QueryerContext)
	c.checker, _ = inner.(driver.NamedValueChecker)
	c.pinger, _ = inner.(driver.Pinger)
	c.resetter, _ = inner.(driver.SessionResetter)
	c.validator, _ = inner.(driver.Validator)
	return c
}

// Unwrap returns the wrapped driver's connection, for code that reaches for
// driver specifics through (*sql.Conn).Raw.
func (c *conn) Unwrap() driver.Conn { return c.inner }

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.remoteTx != nil {
		return newRemoteStmt(c, query), nil
	}
	if c.routing(ctx) {
		switch cls := c.node.classify(query); cls {
		case router.Write:
			// Forwarded as text and arguments at execution; preparing it on
			// the replica would only cost a round trip.
			return newRemoteStmt(c, query), nil
		case router.TxControl, router.Listen:
			return nil, refuse(cls, query)
		}
	}
	return c.prepareLocal(ctx, query)
}

func (c *conn) prepareLocal(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		inner driver.Stmt
		err   error
	)
	if c.prepareCx != nil {
		inner, err = c.prepareCx.PrepareContext(ctx, query)
	} else if err = ctx.Err(); err == nil {
		inner, err = c.inner.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return newStmt(c, query, inner), nil
}

// Close closes the local connection. A remote transaction still open (the
// app lost the *sql.Tx) is rolled back by the primary-region node when it
// idles out; the link stays up for the node's other connections.
func (c *conn) Close() error { return c.inner.Close() }

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx opens a read-only transaction on the local database, and in a
// replica region a read-write one on the primary: a remote transaction,
// whose BEGIN travels with its first statement.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if !opts.ReadOnly && c.routing(ctx) {
		c.remoteTx = newRemoteTx(ctx, c, opts)
		return c.remoteTx, nil
	}
	inner, err := c.beginLocal(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.localTx = true
	return &localTx{conn: c, inner: inner}, nil
}

func (c *conn) beginLocal(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.beginTx != nil {
		return c.beginTx.BeginTx(ctx, opts)
	}
	if opts.Isolation != driver.IsolationLevel(0) || opts.ReadOnly {
		// database/sql refuses non-default options for drivers without
		// ConnBeginTx; say the same rather than silently dropping them.
		return nil, errNoTxOptions
	}
	return c.inner.Begin() //nolint:staticcheck // fallback for drivers without ConnBeginTx
}

// routing reports whether statements outside a transaction are routed:
// only in a replica region whose local database really is a standby, and
// not inside a local (read-only) transaction.
func (c *conn) routing(ctx context.Context) bool {
	return c.node.role == roleReplica && !c.localTx && !c.node.localIsPrimary(ctx)
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.remoteTx != nil {
		return c.remoteTx.exec(ctx, query, args)
	}
	if !c.routing(ctx) {
		return c.execLocal(ctx, query, args)
	}
	return dispatch(c, query,
		func() (driver.Result, error) { return c.execLocal(ctx, query, args) },
		func() (driver.Result, error) { return c.forwardExec(ctx, query, args) })
}

// forwardExec runs an autocommit write on the primary and awaits its
// replay.
func (c *conn) forwardExec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.forward(ctx, query, args, false)
	if err != nil {
		return nil, err
	}
	if err := c.node.await(ctx, lsn.LSN(res.LSN)); err != nil {
		return nil, err
	}
	return driver.RowsAffected(res.RowsAffected), nil
}

// forwardQuery runs an autocommit write that returns rows (RETURNING) on
// the primary; the rows are handed over once the replica has replayed it.
func (c *conn) forwardQuery(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	res, err := c.forward(ctx, query, args, true)
	if err != nil {
		return nil, err
	}
	if err := c.node.await(ctx, lsn.LSN(res.LSN)); err != nil {
		return nil, err
	}
	return newRemoteRows(res), nil
}

func (c *conn) forward(ctx context.Context, query string, args []driver.NamedValue, rows bool) (*wire.Result, error) {
	wargs, err := encodeArgs(args)
	if err != nil {
		return nil, err
	}
	c.node.counters.forwarded.Add(1)
	_, res, err := c.node.forward(ctx, "", &wire.Statement{Query: query, Args: wargs, Rows: rows})
	return res, err
}

func (c *conn) execLocal(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.execer == nil {
		return nil, driver.ErrSkip
	}
	return c.execer.ExecContext(ctx, query, args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.remoteTx != nil {
		return c.remoteTx.query(ctx, query, args)
	}
	if !c.routing(ctx) {
		return c.queryLocal(ctx, query, args)
	}
	return dispatch(c, query,
		func() (driver.Rows, error) { return c.queryLocal(ctx, query, args) },
		func() (driver.Rows, error) { return c.forwardQuery(ctx, query, args) })
}

func (c *conn) queryLocal(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.queryer == nil {
		return nil, driver.ErrSkip
	}
	return c.queryer.QueryContext(ctx, query, args)
}

func (c *conn) Ping(ctx context.Context) error {
	if c.pinger == nil {
		return nil
	}
	return c.pinger.Ping(ctx)
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if c.checker == nil {
		return driver.ErrSkip
	}
	return c.checker.CheckNamedValue(nv)
}

func (c *conn) ResetSession(ctx context.Context) error {
	if c.remoteTx != nil {
		// database/sql returned the connection with the remote transaction
		// still open: it cannot be reused safely.
		return driver.ErrBadConn
	}
	if c.resetter == nil {
		return nil
	}
	return c.resetter.ResetSession(ctx)
}

func (c *conn) IsValid() bool {
	if c.validator == nil {
		return true
	}
	return c.validator.IsValid()
}
