package flypg

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/router"
)

// conn wraps one connection of the wrapped driver to a database's local
// copy. Where that copy is writable (dev mode, the primary region) every
// call goes straight through; elsewhere each statement is routed when it
// runs. inner is nil for a detached connection: the local copy was
// unreachable when it was made, so everything goes to the primary until
// database/sql replaces it.
type conn struct {
	db    *database
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

func newConn(db *database, inner driver.Conn) *conn {
	c := &conn{db: db, inner: inner}
	if inner == nil {
		return c
	}
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

func (c *conn) node() *Node { return c.db.n }

// nonStandardStrings reports the local session's standard_conforming_strings
// = off, which changes how the router must read string literals.
func (c *conn) nonStandardStrings() bool {
	return c.inner != nil && c.node().backend.NonStandardStrings(c.inner)
}

// Unwrap returns the wrapped driver's connection (nil for a detached
// connection), for code that reaches for driver specifics through
// (*sql.Conn).Raw.
func (c *conn) Unwrap() driver.Conn { return c.inner }

// errDetached refuses what only a local session can do on a connection
// whose local database is unreachable.
var errDetached = errors.New("flypg: the local database is unreachable, and this needs a session on it (SET, a local prepared statement): retry when it is back")

// routing reports whether statements outside a transaction are routed:
// outside dev mode, on a connection whose local copy is not the writable
// primary, outside a local (read-only) transaction.
func (c *conn) routing() bool {
	return c.db.n.role != roleDev && !c.localTx && (c.inner == nil || !c.db.writable())
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if c.remoteTx != nil || c.inner == nil {
		return newRemoteStmt(c, query), nil
	}
	if c.routing() {
		switch r := c.node().analyze(c, query); r.Class {
		case router.Write:
			// Forwarded as text and arguments at execution; preparing it on
			// the replica would only cost a round trip.
			return newRemoteStmt(c, query), nil
		case router.TxControl, router.SessionBound:
			return nil, refuse(r, query)
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
// app lost the *sql.Tx) is rolled back by the serving node when it idles
// out; the link stays up for the node's other connections.
func (c *conn) Close() error {
	if c.inner == nil {
		return nil
	}
	return c.inner.Close()
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx opens a read-only transaction on the local database, and where
// the local copy is not the primary a read-write one (or, under OnPrimary,
// a read-only one) on the primary: a remote transaction, whose BEGIN
// travels with its first statement.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	// A read-only transaction under AfterLSN that the local copy cannot
	// serve in time runs on the primary, as a read would.
	if c.routing() && (!opts.ReadOnly || c.inner == nil || onPrimary(ctx) || !c.awaitAfter(ctx)) {
		t, err := newRemoteTx(ctx, c, opts)
		if err != nil {
			return nil, err
		}
		c.remoteTx = t
		return t, nil
	}
	inner, err := c.beginLocal(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.localTx = true
	return &localTx{conn: c, inner: inner, ctx: ctx}, nil
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
	if _, pgx := c.node().backend.(backend.Pgx); pgx && query == "" && len(args) > 0 {
		// pgx panics here (its statement cache refuses empty SQL); say
		// what it says for a blank query with arguments. (lib/pq answers
		// this itself.)
		return nil, errEmptyWithArgs
	}
	if c.remoteTx != nil {
		return c.remoteTx.exec(ctx, query, args)
	}
	if !c.routing() {
		c.node().counters.local.Add(1)
		if c.onStandbyTx() {
			return guardStandbyTx(ctx, c, query, func() (driver.Result, error) { return c.execLocal(ctx, query, args) })
		}
		return c.execLocal(ctx, query, args)
	}
	return dispatch(ctx, c, query,
		func() (driver.Result, error) { return c.execLocal(ctx, query, args) },
		func(read bool) (driver.Result, error) { return c.forwardExec(ctx, query, args, read) })
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.remoteTx != nil {
		return c.remoteTx.query(ctx, query, args)
	}
	if !c.routing() {
		c.node().counters.local.Add(1)
		if c.onStandbyTx() {
			return guardStandbyTx(ctx, c, query, func() (driver.Rows, error) { return c.queryLocal(ctx, query, args) })
		}
		return c.queryLocal(ctx, query, args)
	}
	return dispatch(ctx, c, query,
		func() (driver.Rows, error) { return c.queryLocal(ctx, query, args) },
		func(read bool) (driver.Rows, error) { return c.forwardQuery(ctx, query, args, read) })
}

// execLocal runs a statement on the local connection. Under Track, a
// statement that may write reads the WAL position afterwards (where the
// local copy is the primary).
func (c *conn) execLocal(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.execer == nil {
		if c.inner == nil {
			return nil, errDetached
		}
		return nil, driver.ErrSkip
	}
	res, err := c.execer.ExecContext(ctx, query, args)
	if err == nil {
		c.trackLocal(ctx, query)
	} else {
		c.noteRefusal(err)
	}
	return res, err
}

// noteRefusal asks for a role check at once when a local copy believed
// writable refused a write as a standby would (25006): it was demoted.
func (c *conn) noteRefusal(err error) {
	if !c.localTx && c.db.writable() && c.node().readOnlyRefusal(err) {
		c.node().requestCheck()
	}
}

func (c *conn) queryLocal(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.queryer == nil {
		if c.inner == nil {
			return nil, errDetached
		}
		return nil, driver.ErrSkip
	}
	rows, err := c.queryer.QueryContext(ctx, query, args)
	if err != nil {
		c.noteRefusal(err)
		return nil, err
	}
	return c.trackRows(ctx, query, rows), nil
}

func (c *conn) Ping(ctx context.Context) error {
	if c.inner == nil {
		// The app's health check: the connection works as long as a node
		// with the primary answers.
		return c.node().pingPrimary(ctx, c.db)
	}
	if c.pinger == nil {
		return nil
	}
	return c.pinger.Ping(ctx)
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if c.checker == nil {
		if c.inner == nil {
			return c.node().backend.CheckNamedValue(nv)
		}
		return driver.ErrSkip
	}
	return c.checker.CheckNamedValue(nv)
}

func (c *conn) ResetSession(ctx context.Context) error {
	if c.remoteTx != nil || c.node().closed() {
		// (After the node's Close, its connections go: new ones fail with
		// ErrNodeClosed.)
		// database/sql returned the connection with the remote transaction
		// still open: it cannot be reused safely.
		return driver.ErrBadConn
	}
	if c.inner == nil {
		if c.db.reachable() {
			return driver.ErrBadConn // the local copy is back: reconnect to it
		}
		return nil
	}
	if c.resetter == nil {
		return nil
	}
	return c.resetter.ResetSession(ctx)
}

func (c *conn) IsValid() bool {
	if c.node().closed() {
		return false
	}
	if c.inner == nil {
		return !c.db.reachable()
	}
	if c.validator == nil {
		return true
	}
	return c.validator.IsValid()
}

// errEmptyWithArgs is pgconn's error for a statement given more arguments
// than it has parameters.
var errEmptyWithArgs = errors.New("mismatched param and argument count")
