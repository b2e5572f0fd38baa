package flypg

import (
	"context"
	"database/sql/driver"
	"io"

	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/router"
)

// Under Track, a write made on a local copy that is the primary (the
// primary region, dev mode) records the WAL insert position read right
// after it on the same session: at or past its commit. Only statements
// that may write pay the extra query, and only when tracked.

// trackLocal records the position after an autocommit statement that may
// have written, outside a transaction.
func (c *conn) trackLocal(ctx context.Context, query string) {
	t := tracked(ctx)
	if t == nil || c.localTx || c.inner == nil {
		return
	}
	if c.node().analyze(c, query).Class == router.Read {
		return
	}
	if l, ok := c.localLSN(ctx); ok {
		t.record(l)
	}
}

// trackCommit records the position after a local transaction committed.
func (c *conn) trackCommit(ctx context.Context) {
	if t := tracked(ctx); t != nil && c.inner != nil && ctx.Err() == nil {
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
