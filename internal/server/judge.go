package server

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"

	"github.com/flypg/flypg/internal/backend"

	"github.com/flypg/flypg/lsn"
)

// stateSQL counts what a session holds beyond its last statement that
// cannot simply be reset. Pattern matching SQL text for this always has
// holes — a function can take a session lock or create a temporary table
// — so the session itself is the judge, as the replica is the judge of
// what is a write:
//   - session advisory locks held by this backend (counted apart: the
//     caller is told they did not survive);
//   - SQL-level prepared statements (PREPARE; pgx's own protocol-level ones
//     are not from_sql);
//   - open cursors (after an autocommit statement only WITH HOLD ones; the
//     unnamed portal is this query's own);
//   - LISTEN channels;
//   - a temporary namespace (once created it lasts as long as the session).
//
// A session holding any of these is closed rather than pooled. Settings
// are not counted but reset, which is cheaper than finding them (scanning
// pg_settings cost several times the rest of this query) and also reaches
// custom placeholders (SET app.tenant, set_config('app.tenant', …)) that
// pg_settings does not list.
const stateSQL = `(SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'advisory')::text,
 ((SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql)
 + (SELECT count(*) FROM pg_catalog.pg_cursors WHERE name <> '')
 + (SELECT count(*) FROM pg_catalog.pg_listening_channels())
 + (pg_catalog.pg_my_temp_schema() <> 0)::int)::text`

// resetSQL puts every setting of the session back — SET, SET ROLE,
// set_config(…, false), SET SESSION AUTHORIZATION (which RESET ALL does not
// reset) — and forgets its sequence state, so that currval and lastval in
// the next caller's statement (a function may call them) never return this
// caller's values. (The name of a custom placeholder, once made, stays
// defined for the session, with an empty value; see docs/routing.md.)
var resetSQL = []string{"SET SESSION AUTHORIZATION DEFAULT", "RESET ALL", "DISCARD SEQUENCES"}

// judgeSQL reads the commit position and the session's state; it is sent
// with resetSQL in one round trip. The insert position, not
// pg_current_wal_lsn() (the write position), so that it covers a commit
// made with synchronous_commit=off that the WAL writer has not written yet.
const (
	judgeSQL     = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text, " + stateSQL
	judgeReadSQL = "SELECT NULL::text, " + stateSQL
	lsnSQL       = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text"
)

// session is what judge found.
type session struct {
	lsn      lsn.LSN
	stateful bool // the connection must not be pooled
	locks    bool // among that state, session advisory locks: the caller is told they were lost
}

// judge reads, on the session that just ran a statement or COMMIT, the
// primary's WAL insert position (when wantLSN) and whether the session
// holds state that must not reach the next caller.
func judge(ctx context.Context, b backend.Backend, c *sql.Conn, wantLSN bool) (session, error) {
	q := judgeReadSQL
	if wantLSN {
		q = judgeSQL
	}
	row, err := b.QueryThen(ctx, c, q, resetSQL...)
	if err == nil && len(row) != 3 {
		err = fmt.Errorf("flypg: the session check returned %d columns", len(row))
	}
	if err != nil {
		return session{}, fmt.Errorf("flypg: read the primary's WAL position: %w", err)
	}
	var locks, other int64
	if row[1] != nil {
		locks, _ = strconv.ParseInt(*row[1], 10, 64)
	}
	if row[2] != nil {
		other, _ = strconv.ParseInt(*row[2], 10, 64)
	}
	s := session{stateful: locks+other > 0, locks: locks > 0}
	if row[0] != nil {
		if s.lsn, err = lsn.Parse(*row[0]); err != nil {
			return s, err
		}
	}
	return s, nil
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

// commitLSN is what to report after a commit: read on the committing
// session when that works, else the position on another connection. ok is
// false when neither could be read: the commit is durable, its position
// unknown.
func commitLSN(ctx context.Context, b backend.Backend, c *sql.Conn, db *sql.DB) (s session, ok bool, err error) {
	s, err = judge(ctx, b, c, true)
	if err == nil {
		return s, true, nil
	}
	// The session broke after COMMIT returned: whatever it held is gone
	// with it, and a fresh reading elsewhere still covers the commit.
	retire(c)
	if ctx.Err() == nil {
		if l, err2 := insertLSN(ctx, db); err2 == nil {
			return session{lsn: l}, true, nil
		}
	}
	return session{}, false, err
}

// retire closes a pooled connection instead of returning it to the pool.
// (DISCARD ALL would also drop the wrapped driver's prepared statements.)
func retire(c *sql.Conn) { _ = c.Raw(func(any) error { return driver.ErrBadConn }) }
