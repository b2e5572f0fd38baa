package backend

import (
	"context"
	"database/sql/driver"
	"errors"
	"time"
)

// pqConnector opens lib/pq connections wrapped in pqConn.
type pqConnector struct {
	inner driver.Connector
}

func (c *pqConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newPQConn(dc), nil
}

func (c *pqConnector) Driver() driver.Driver { return c.inner.Driver() }

// pingIdle is how long a pooled connection may sit unused before it is
// pinged when database/sql hands it out again — pgx's stdlib default.
const pingIdle = time.Second

// pqConn is a lib/pq connection with one behaviour added: ResetSession
// pings a connection that sat idle for more than a second, as pgx's stdlib
// does. lib/pq does not, and learns that a pooled connection died (the
// primary restarted) only from the next statement, after sending it — an
// unknown outcome for a write the serving node runs. A failed ping makes
// database/sql discard the connection and take another, before anything is
// sent. Everything else is lib/pq's own: the wrapper passes every call
// through, and Unwrap returns lib/pq's connection.
type pqConn struct {
	driver.Conn // lib/pq's *conn: Prepare, Close, Begin

	beginTx   driver.ConnBeginTx
	prepareCx driver.ConnPrepareContext
	execer    driver.ExecerContext
	queryer   driver.QueryerContext
	checker   driver.NamedValueChecker
	pinger    driver.Pinger
	resetter  driver.SessionResetter
	validator driver.Validator

	lastReset time.Time
}

var (
	_ driver.Conn               = (*pqConn)(nil)
	_ driver.ConnBeginTx        = (*pqConn)(nil)
	_ driver.ConnPrepareContext = (*pqConn)(nil)
	_ driver.ExecerContext      = (*pqConn)(nil)
	_ driver.QueryerContext     = (*pqConn)(nil)
	_ driver.NamedValueChecker  = (*pqConn)(nil)
	_ driver.Pinger             = (*pqConn)(nil)
	_ driver.SessionResetter    = (*pqConn)(nil)
	_ driver.Validator          = (*pqConn)(nil)
)

func newPQConn(dc driver.Conn) *pqConn {
	c := &pqConn{Conn: dc, lastReset: time.Now()}
	c.beginTx, _ = dc.(driver.ConnBeginTx)
	c.prepareCx, _ = dc.(driver.ConnPrepareContext)
	c.execer, _ = dc.(driver.ExecerContext)
	c.queryer, _ = dc.(driver.QueryerContext)
	c.checker, _ = dc.(driver.NamedValueChecker)
	c.pinger, _ = dc.(driver.Pinger)
	c.resetter, _ = dc.(driver.SessionResetter)
	c.validator, _ = dc.(driver.Validator)
	return c
}

// Unwrap returns lib/pq's connection.
func (c *pqConn) Unwrap() driver.Conn { return c.Conn }

func (c *pqConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.beginTx == nil {
		// lib/pq has BeginTx; without it database/sql itself refuses options.
		if opts.Isolation != 0 || opts.ReadOnly {
			return nil, errors.New("flypg: the wrapped driver does not support transaction options")
		}
		return c.Conn.Begin() //nolint:staticcheck // fallback for a connection without BeginTx
	}
	return c.beginTx.BeginTx(ctx, opts)
}

func (c *pqConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.prepareCx == nil {
		return c.Conn.Prepare(query)
	}
	return c.prepareCx.PrepareContext(ctx, query)
}

func (c *pqConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.execer == nil {
		return nil, driver.ErrSkip
	}
	return c.execer.ExecContext(ctx, query, args)
}

func (c *pqConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.queryer == nil {
		return nil, driver.ErrSkip
	}
	return c.queryer.QueryContext(ctx, query, args)
}

func (c *pqConn) CheckNamedValue(nv *driver.NamedValue) error {
	if c.checker == nil {
		return driver.ErrSkip
	}
	return c.checker.CheckNamedValue(nv)
}

func (c *pqConn) Ping(ctx context.Context) error {
	if c.pinger == nil {
		return nil
	}
	return c.pinger.Ping(ctx)
}

// ResetSession is lib/pq's (a connection it marked bad is discarded), plus
// the ping of a connection idle for more than pingIdle.
func (c *pqConn) ResetSession(ctx context.Context) error {
	if c.resetter != nil {
		if err := c.resetter.ResetSession(ctx); err != nil {
			return err
		}
	}
	now := time.Now()
	idle := now.Sub(c.lastReset)
	c.lastReset = now
	if idle > pingIdle && c.pinger != nil {
		if err := c.pinger.Ping(ctx); err != nil {
			return driver.ErrBadConn
		}
	}
	return nil
}

func (c *pqConn) IsValid() bool { return c.valid() }

func (c *pqConn) valid() bool { return c.validator == nil || c.validator.IsValid() }
