package flypg

import (
	"context"
	"database/sql/driver"
)

// stmt is a prepared statement. It wraps the wrapped driver's statement on
// the local connection so that, in a replica region, a write can be sent to
// the primary as its text and arguments instead. A statement that will only
// ever be forwarded (a write, or any statement in a remote transaction) is
// not prepared locally at all: inner is nil.
type stmt struct {
	conn  *conn
	query string
	inner driver.Stmt

	execer  driver.StmtExecContext
	queryer driver.StmtQueryContext
	checker driver.NamedValueChecker
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

func newStmt(c *conn, query string, inner driver.Stmt) *stmt {
	s := &stmt{conn: c, query: query, inner: inner}
	s.execer, _ = inner.(driver.StmtExecContext)
	s.queryer, _ = inner.(driver.StmtQueryContext)
	s.checker, _ = inner.(driver.NamedValueChecker)
	return s
}

// newRemoteStmt is a statement that runs on the primary.
func newRemoteStmt(c *conn, query string) *stmt { return &stmt{conn: c, query: query} }

func (s *stmt) Close() error {
	if s.inner == nil {
		return nil
	}
	return s.inner.Close()
}

// NumInput is -1 (unknown: database/sql does not check the argument count)
// for a statement that was not prepared locally; the primary checks it.
func (s *stmt) NumInput() int {
	if s.inner == nil {
		return -1
	}
	return s.inner.NumInput()
}

// Exec and Query are the pre-context API; database/sql only calls them for
// drivers without the Context variants, which this wrapper always has.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valuesToNamed(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valuesToNamed(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	c := s.conn
	switch {
	case c.remoteTx != nil:
		return c.remoteTx.exec(ctx, s.query, args)
	case s.inner == nil:
		// Not prepared locally, but database/sql keeps statements per
		// connection beyond the transaction they were prepared in: where
		// the statement runs is decided now, like an unprepared one.
		return c.ExecContext(ctx, s.query, args)
	case !c.routing():
		c.node().counters.local.Add(1)
		return s.execLocal(ctx, args)
	}
	return dispatch(ctx, c, s.query,
		func() (driver.Result, error) { return s.execLocal(ctx, args) },
		func(read bool) (driver.Result, error) { return c.forwardExec(ctx, s.query, args, read) })
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	c := s.conn
	switch {
	case c.remoteTx != nil:
		return c.remoteTx.query(ctx, s.query, args)
	case s.inner == nil:
		return c.QueryContext(ctx, s.query, args)
	case !c.routing():
		c.node().counters.local.Add(1)
		return s.queryLocal(ctx, args)
	}
	return dispatch(ctx, c, s.query,
		func() (driver.Rows, error) { return s.queryLocal(ctx, args) },
		func(read bool) (driver.Rows, error) { return c.forwardQuery(ctx, s.query, args, read) })
}

func (s *stmt) execLocal(ctx context.Context, args []driver.NamedValue) (res driver.Result, err error) {
	if s.execer != nil {
		res, err = s.execer.ExecContext(ctx, args)
	} else {
		var vals []driver.Value
		if vals, err = namedToValues(args); err != nil {
			return nil, err
		}
		res, err = s.inner.Exec(vals) //nolint:staticcheck // fallback for drivers without StmtExecContext
	}
	if err == nil {
		s.conn.trackLocal(ctx, s.query)
	}
	return res, err
}

func (s *stmt) queryLocal(ctx context.Context, args []driver.NamedValue) (rows driver.Rows, err error) {
	if s.queryer != nil {
		rows, err = s.queryer.QueryContext(ctx, args)
	} else {
		var vals []driver.Value
		if vals, err = namedToValues(args); err != nil {
			return nil, err
		}
		rows, err = s.inner.Query(vals) //nolint:staticcheck // fallback for drivers without StmtQueryContext
	}
	if err != nil {
		return nil, err
	}
	return s.conn.trackRows(ctx, s.query, rows), nil
}

// CheckNamedValue defers to the statement, then to the connection, as
// database/sql would with the wrapped driver alone.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if s.inner == nil {
		return s.conn.CheckNamedValue(nv)
	}
	if s.checker != nil {
		return s.checker.CheckNamedValue(nv)
	}
	return s.conn.CheckNamedValue(nv)
}

func valuesToNamed(args []driver.Value) []driver.NamedValue {
	named := make([]driver.NamedValue, len(args))
	for i, v := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return named
}

func namedToValues(args []driver.NamedValue) ([]driver.Value, error) {
	vals := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errNamedArgs
		}
		vals[i] = a.Value
	}
	return vals, nil
}
