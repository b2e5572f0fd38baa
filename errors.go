package flypg

import (
	"errors"
	"fmt"
	"time"

	"github.com/flypg/flypg/lsn"
)

// What an error from a write means (DESIGN "Outcomes"):
//
//   - nil: committed and, unless NoAwait, replayed by the local database.
//   - *AwaitError (errors.Is(err, ErrAwaitTimeout)): committed on the
//     primary, not replayed locally in time; it carries the result.
//   - *CommittedError (errors.Is(err, ErrCommitted)): committed, but the
//     commit's position is unknown, so it was not awaited.
//   - a PostgreSQL error (*pgconn.PgError, *pq.Error), ErrNoPrimary, an
//     argument error: not committed.
//   - ErrUnknownOutcome: the write may or may not have committed; flypg
//     never resends it by itself.
var (
	// ErrAwaitTimeout is matched (errors.Is) by an *AwaitError.
	ErrAwaitTimeout = errors.New("flypg: the write committed on the primary, but the local replica did not replay it in time")

	// ErrCommitted is matched by a *CommittedError: the write committed,
	// but its commit position could not be learned.
	ErrCommitted = errors.New("flypg: the write committed on the primary, but its commit position is unknown, so it was not awaited")

	// ErrNoPrimary reports that no node whose copy of the database is the
	// primary could be reached before the deadline. Nothing was executed.
	ErrNoPrimary = errors.New("flypg: no node with the primary database reachable; nothing was executed")

	// ErrNoNode reports that no node of the region CallRegion named could
	// be reached before the deadline. Nothing was executed.
	ErrNoNode = errors.New("flypg: no node of the region reachable; nothing was executed")

	// ErrTooLarge reports a request larger than the link carries (64 MiB
	// by default: a statement's arguments, a procedure's request). Nothing
	// was sent.
	ErrTooLarge = errors.New("flypg: request too large for the link; nothing was sent")

	// ErrUnknownOutcome reports that a write was sent to the primary but
	// the answer never came back (the link or the primary's connection
	// broke): it may or may not have committed. flypg never resends such a
	// write by itself; check before retrying.
	ErrUnknownOutcome = errors.New("flypg: write outcome unknown: the connection to the primary was lost after the write was sent; check before retrying")

	// ErrTxGone reports that a remote transaction no longer exists on the
	// serving node: it was rolled back because its link or primary
	// connection was lost, it sat idle too long, the node restarted, the
	// answer to a pipelined batch was lost (the serving node rolls it
	// back), or its COMMIT was never sent (the caller's context ended
	// first; the context error is wrapped too). Nothing of it committed.
	// The serving node's reason, when it gave one, follows in the message.
	ErrTxGone = errors.New("flypg: remote transaction rolled back on the serving node (link lost, idle timeout, or restart); nothing of it committed")

	// ErrLocalUnavailable is the reason of an *AwaitError when the local
	// database could not be reached to wait on.
	ErrLocalUnavailable = errors.New("flypg: the local database is unreachable")

	// ErrNodeClosed is returned by Node.Open, and by new connections of the
	// node's databases, after Node.Close; database/sql discards the
	// node's pooled connections at their next use.
	ErrNodeClosed = errors.New("flypg: node is closed")
)

// AwaitError reports that a write committed on the primary at LSN but the
// local database had not replayed it after Waited. The write is durable;
// only read-your-writes for the next local read is not guaranteed. It
// carries the statement's result so that nobody needs to run the write
// again to learn it.
type AwaitError struct {
	LSN    lsn.LSN
	Waited time.Duration
	// Err is why the wait ended: context.DeadlineExceeded (AwaitTimeout or
	// the caller's deadline), ErrLocalUnavailable, …
	Err error
	// RowsAffected is the write's row count.
	RowsAffected int64
	// Columns and Rows are a query's result (INSERT … RETURNING), the
	// values as the wrapped driver returns them.
	Columns []string
	Rows    [][]any
}

func (e *AwaitError) Error() string {
	if e.Waited < time.Millisecond {
		return fmt.Sprintf("flypg: write committed at %s, but the local replica could not be waited on: %v", e.LSN, e.Err)
	}
	return fmt.Sprintf("flypg: write committed at %s but the local replica did not replay it within %v: %v",
		e.LSN, e.Waited.Round(time.Millisecond), e.Err)
}

// Is makes errors.Is(err, ErrAwaitTimeout) true.
func (e *AwaitError) Is(target error) bool { return target == ErrAwaitTimeout }

// Unwrap returns why the wait ended.
func (e *AwaitError) Unwrap() error { return e.Err }

// CommittedError reports a write that committed on the primary whose
// commit position could not be read (the primary's connection failed right
// after COMMIT returned), so it could not be awaited.
type CommittedError struct {
	// Err is why the position could not be read.
	Err error
	// RowsAffected, Columns and Rows are the write's result, as in
	// AwaitError.
	RowsAffected int64
	Columns      []string
	Rows         [][]any
}

func (e *CommittedError) Error() string {
	return fmt.Sprintf("flypg: write committed on the primary, but its commit position could not be read, so the local replica may not show it yet: %v", e.Err)
}

// Is makes errors.Is(err, ErrCommitted) true.
func (e *CommittedError) Is(target error) bool { return target == ErrCommitted }

// Unwrap returns why the position could not be read.
func (e *CommittedError) Unwrap() error { return e.Err }

// ProcError is an error a procedure returned (other than a PostgreSQL
// error), a panic in it, or an unknown procedure name, as raised on the
// serving node.
type ProcError struct {
	Proc    string
	Node    string
	Message string
}

func (e *ProcError) Error() string {
	return fmt.Sprintf("flypg: procedure %s on node %s: %s", e.Proc, e.Node, e.Message)
}

// SessionStateError refuses a statement in autocommit whose effect lives in
// the session (a session advisory lock, currval/lastval, a temporary
// object, LISTEN): in a replica region each autocommit statement may run on
// a different primary connection, so the state would silently vanish or
// leak to another caller. Alternative says what to do instead.
//
// A statement refused before it ran is not committed. One whose session
// state is found only after it ran on the primary (a function that took a
// session advisory lock) has Committed set: the write is durable, but the
// state did not survive the statement.
//
// ReadOnlyTx is set when the statement was refused inside a read-only
// transaction, which runs on the local replica: a lock taken there excludes
// nobody on the primary, and the replica has none of the primary's session
// state.
type SessionStateError struct {
	Statement   string
	What        string
	Alternative string
	Committed   bool
	ReadOnlyTx  bool
}

func (e *SessionStateError) Error() string {
	if e.Committed {
		return fmt.Sprintf("flypg: the write committed, but the %s it took was released when it ended (statement %.60q): %s",
			e.What, e.Statement, e.Alternative)
	}
	if e.ReadOnlyTx {
		return fmt.Sprintf("flypg: %s cannot be used in a read-only transaction where the local database is a replica (statement %.60q): %s",
			e.What, e.Statement, e.Alternative)
	}
	return fmt.Sprintf("flypg: %s cannot follow the caller in autocommit where the local database is a replica (statement %.60q): %s",
		e.What, e.Statement, e.Alternative)
}
