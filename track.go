package flypg

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"

	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/router"
)

// Under Track, a write made on a local copy that is the primary (the
// primary region, dev mode) records the WAL insert position read right
// after it on the same session: at or past its commit. Only statements
// that may write pay the extra query, and only when tracked.

// tracking reports whether a local autocommit statement must record the
// position after it: under Track, outside a transaction, unless it only
// reads.
func (c *conn) tracking(ctx context.Context, query string) *Tracked {
	t := tracked(ctx)
	if t == nil || c.localTx || c.inner == nil || c.node().role == roleDev || c.db.otherCluster() || c.node().analyze(c, query).Class == router.Read {
		return nil
	}
	return t
}

// trackLocal records the position after a local autocommit statement that
// may have written.
func (c *conn) trackLocal(ctx context.Context, query string) {
	if t := c.tracking(ctx, query); t != nil {
		if l, ok := c.localLSN(ctx); ok {
			t.record(l)
		}
	}
}

// trackRows defers trackLocal for a query (INSERT … RETURNING) until its
// rows are closed: the session is busy with them until then.
func (c *conn) trackRows(ctx context.Context, query string, rows driver.Rows) driver.Rows {
	t := c.tracking(ctx, query)
	if t == nil {
		return rows
	}
	return &trackedRows{Rows: rows, done: func() {
		if l, ok := c.localLSN(ctx); ok {
			t.record(l)
		}
	}}
}

// trackedRows records the position once its rows are closed. It keeps the
// wrapped rows' column-type answers.
type trackedRows struct {
	driver.Rows
	done func()
}

func (r *trackedRows) Close() error {
	err := r.Rows.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return err
}

func (r *trackedRows) ColumnTypeDatabaseTypeName(i int) string {
	if x, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return x.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *trackedRows) ColumnTypeLength(i int) (int64, bool) {
	if x, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return x.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *trackedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if x, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return x.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *trackedRows) ColumnTypeNullable(i int) (bool, bool) {
	if x, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return x.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *trackedRows) ColumnTypeScanType(i int) reflect.Type {
	if x, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return x.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

// trackCommit records the position after a local transaction committed.
func (c *conn) trackCommit(ctx context.Context) {
	if t := tracked(ctx); t != nil && c.inner != nil && c.node().role != roleDev && !c.db.otherCluster() && ctx.Err() == nil {
		if l, ok := c.localLSN(ctx); ok {
			t.record(l)
		}
	}
}

// localLSN reads the local copy's WAL insert position on this session; not
// ok on a standby (where a local write cannot have happened) or on error.
func (c *conn) localLSN(ctx context.Context) (lsn.LSN, bool) {
	if c.queryer == nil {
		return 0, false
	}
	rows, err := c.queryer.QueryContext(ctx, "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL ELSE pg_catalog.pg_current_wal_insert_lsn()::text END", nil)
	if err != nil {
		return 0, false
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil && err != io.EOF {
		return 0, false
	}
	s, ok := dest[0].(string)
	if !ok {
		return 0, false
	}
	l, err := lsn.Parse(s)
	return l, err == nil
}
