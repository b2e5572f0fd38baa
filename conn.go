package flypg

import (
	"context"
	"database/sql/driver"
)

// conn wraps one connection of the wrapped driver to the local database. In
// dev mode and in the primary region every call goes straight through;
// routing decisions are made per call, so the wrapper costs a branch.
type conn struct {
	node  *Node
	inner driver.Conn

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

func (c *conn) Close() error { return c.inner.Close() }

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.beginLocal(ctx, opts)
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

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.execLocal(ctx, query, args)
}

func (c *conn) execLocal(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.execer == nil {
		return nil, driver.ErrSkip
	}
	return c.execer.ExecContext(ctx, query, args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.queryLocal(ctx, query, args)
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
