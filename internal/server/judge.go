package server

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	"github.com/flypg/flypg/lsn"
)

// stateSQL counts what a session holds beyond its last statement. Pattern
// matching SQL text for this always has holes — a function can SET, take a
// session lock or create a temporary table — so the session itself is the
// judge, as the replica is the judge of what is a write:
//   - settings changed for the session (SET, set_config(…, false), also
//     inside functions): pg_settings' source 'session';
//   - session advisory locks held by this backend;
//   - SQL-level prepared statements (PREPARE; pgx's own protocol-level ones
//     are not from_sql);
//   - open cursors (after an autocommit statement only WITH HOLD ones);
//   - LISTEN channels;
//   - a temporary namespace (once created it lasts as long as the session).
const stateSQL = `(SELECT count(*) FROM pg_catalog.pg_settings WHERE source = 'session')
 + (SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'advisory')
 + (SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql)
 + (SELECT count(*) FROM pg_catalog.pg_cursors)
 + (SELECT count(*) FROM pg_catalog.pg_listening_channels())
 + (pg_catalog.pg_my_temp_schema() <> 0)::int`

// judgeSQL reads the commit position and the session's state in one round
// trip. The insert position, not pg_current_wal_lsn() (the write position),
// so that it covers a commit made with synchronous_commit=off that the WAL
// writer has not written yet.
const (
	judgeSQL     = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text, " + stateSQL
	judgeReadSQL = "SELECT NULL::text, " + stateSQL
	lsnSQL       = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text"
)

// judge reads, on the session that just ran a statement or COMMIT, the
// primary's WAL insert position (when wantLSN) and whether the session
// holds state that must not reach the next caller.
func judge(ctx context.Context, c *sql.Conn, wantLSN bool) (l lsn.LSN, stateful bool, err error) {
	q := judgeReadSQL
	if wantLSN {
		q = judgeSQL
	}
	var text sql.NullString
	var n int64
	if err := c.QueryRowContext(ctx, q).Scan(&text, &n); err != nil {
		return 0, false, fmt.Errorf("flypg: read the primary's WAL position: %w", err)
	}
	if text.Valid {
		if l, err = lsn.Parse(text.String); err != nil {
			return 0, n > 0, err
		}
	}
	return l, n > 0, nil
}

// insertLSN reads the WAL insert position on any connection of db: after a
// commit has returned, every later reading is at or past its record.
func insertLSN(ctx context.Context, db *sql.DB) (lsn.LSN, error) {
	var text string
	if err := db.QueryRowContext(ctx, lsnSQL).Scan(&text); err != nil {
		return 0, fmt.Errorf("flypg: read the primary's WAL position: %w", err)
	}
	return lsn.Parse(text)
}

// commitLSN is the LSN to report after a commit: read on the committing
// session when that works, else on another connection. ok is false when
// neither could be read: the commit is durable, its position unknown.
func commitLSN(ctx context.Context, c *sql.Conn, db *sql.DB) (l lsn.LSN, stateful, ok bool, err error) {
	l, stateful, err = judge(ctx, c, true)
	if err == nil {
		return l, stateful, true, nil
	}
	// The session broke after COMMIT returned: whatever it held is gone
	// with it, and a fresh reading elsewhere still covers the commit.
	retire(c)
	if ctx.Err() == nil {
		if l, err2 := insertLSN(ctx, db); err2 == nil {
			return l, false, true, nil
		}
	}
	return 0, false, false, err
}

// retire closes a pooled connection instead of returning it to the pool.
// (DISCARD ALL would also drop the wrapped driver's prepared statements.)
func retire(c *sql.Conn) { _ = c.Raw(func(any) error { return driver.ErrBadConn }) }
