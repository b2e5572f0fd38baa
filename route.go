package flypg

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/flypg/flypg/router"
)

var (
	// errTxControlText refuses BEGIN/COMMIT/… sent as SQL text in a replica
	// region: the transaction would be split between the replica and the
	// primary. database/sql's BeginTx is the way in.
	errTxControlText = errors.New("flypg: transaction control as SQL text (BEGIN, COMMIT, SAVEPOINT, …) is not supported where the local database is a replica; use db.BeginTx")
	// errListen refuses LISTEN on a replica: notifications are raised on the
	// primary and never reach a standby's sessions.
	errListen = errors.New("flypg: LISTEN cannot work on a read replica: notifications are only delivered on the primary; connect a listener to the primary directly (e.g. pgx.Connect with the primary's URL)")
)

// refuse explains why a statement cannot run in autocommit here.
func refuse(r router.Result, query string) error {
	if r.Class == router.SessionBound {
		if r.Bound == router.BoundListen {
			return errListen
		}
		return &SessionStateError{Statement: query, What: r.Bound.String(), Alternative: r.Bound.Alternative()}
	}
	return fmt.Errorf("%w (statement: %.60q)", errTxControlText, query)
}

// analyze classifies a statement with the node's cached classifier, as the
// local session would lex it.
func (n *Node) analyze(c *conn, query string) router.Result {
	return n.classifier.AnalyzeOpts(query, router.Options{NonStandardStrings: c.nonStandardStrings()})
}

// readOnlyRefusal reports whether err is the replica refusing a statement
// as a write (SQLSTATE 25006 read_only_sql_transaction): the replica is the
// final judge of what is a write.
func (n *Node) readOnlyRefusal(err error) bool {
	return err != nil && n.backend.SQLState(err) == "25006"
}

// dispatch runs an autocommit statement of a routing connection where its
// class says (DESIGN "Routing"): a write on the primary; a read (or a read
// that may write) on the local replica — unless OnPrimary, AfterLSN that
// cannot be met locally, or a detached connection say the primary — and
// what the replica refuses as a write (25006) once on the primary; session
// statements locally; transaction control as text, LISTEN and session
// state that cannot follow the caller nowhere.
func dispatch[T any](ctx context.Context, c *conn, query string, local func() (T, error), remote func(read bool) (T, error)) (T, error) {
	var zero T
	n := c.node()
	r := n.analyze(c, query)
	switch r.Class {
	case router.Write:
		return remote(false)
	case router.TxControl, router.SessionBound:
		return zero, refuse(r, query)
	case router.Read, router.Unsure:
		if c.inner == nil || onPrimary(ctx) || !c.awaitAfter(ctx) {
			n.counters.primaryReads.Add(1)
			// An Unsure statement may write: on the primary it is a write,
			// with its commit awaited.
			return remote(r.Class == router.Read)
		}
		n.counters.local.Add(1)
		v, err := local()
		if err == nil && r.Class == router.Unsure {
			v, err = settleUnsure(ctx, c, v)
		}
		if n.readOnlyRefusal(err) {
			// The standby may have granted a session lock before refusing
			// the write that followed it: release it, or the pooled
			// replica connection would keep it.
			c.unlockLocal(ctx)
			n.counters.retried.Add(1)
			return remote(false)
		}
		return v, err
	}
	if c.inner == nil {
		return zero, errDetached
	}
	n.counters.local.Add(1)
	return local()
}

// awaitAfter waits, under AfterLSN, until the local copy has replayed the
// context's LSN, bounded by AwaitTimeout. false: it has not, and a read
// must go to the primary to be current.
func (c *conn) awaitAfter(ctx context.Context) bool {
	a := afterLSN(ctx)
	if a == nil || c.db.otherCluster() {
		return true // the LSN is a position in another cluster's WAL
	}
	switch a.state.Load() {
	case 1:
		return true
	case -1:
		return false
	}
	if c.db.wait(ctx, a.lsn, true) != nil {
		a.state.Store(-1)
		return false
	}
	a.state.Store(1)
	return true
}

// settleUnsure finishes an Unsure statement (one calling a function that
// may have side effects) that ran on the local replica. Its rows are read
// ahead, up to prefetchLimit, so that a refusal as a write (25006) on any
// row — not only the first — still sends it to the primary rather than
// reach the app. And a standby accepts advisory locks: a function that took
// a session lock there took it on the wrong server, where it excludes
// nobody; the lock is released and the statement refused, as a session
// lock taken in autocommit is.
func settleUnsure[T any](ctx context.Context, c *conn, v T) (T, error) {
	var zero T
	if rows, ok := any(v).(driver.Rows); ok {
		pr, err := prefetch(rows)
		if err != nil {
			return zero, err
		}
		if !pr.complete {
			// Too big to read ahead; whatever the rest holds, the app sees.
			return any(pr).(T), nil
		}
		v = any(pr).(T)
	}
	if err := c.releaseLocalLocks(ctx); err != nil {
		return zero, err
	}
	return v, nil
}

// releaseLocalLocks refuses, after the fact, a statement that left a
// session advisory lock on the local replica, releasing it.
func (c *conn) releaseLocalLocks(ctx context.Context) error {
	if c.queryer == nil {
		return nil
	}
	n, err := c.queryInt(ctx, "SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()")
	if err != nil || n == 0 {
		return err
	}
	c.unlockLocal(ctx)
	return &SessionStateError{Statement: "a function called in autocommit", What: router.BoundAdvisoryLock.String(),
		Alternative: "the function took a session advisory lock, which would have been held on the local replica, not the primary: " +
			router.BoundAdvisoryLock.Alternative()}
}

// unlockLocal releases every session advisory lock of the local session.
func (c *conn) unlockLocal(ctx context.Context) {
	if c.queryer != nil {
		_, _ = c.queryInt(ctx, "SELECT count(*) FROM (SELECT pg_catalog.pg_advisory_unlock_all()) u")
	}
}

func (c *conn) queryInt(ctx context.Context, q string) (int64, error) {
	rows, err := c.queryer.QueryContext(ctx, q, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	n, _ := dest[0].(int64)
	return n, nil
}

// onStandbyTx reports a local (read-only) transaction on a standby, in a
// cluster: where a statement may take an advisory lock that excludes
// nobody on the primary.
func (c *conn) onStandbyTx() bool {
	return c.localTx && c.inner != nil && c.db.n.role != roleDev && !c.db.writable()
}

// guardStandbyTx runs a statement of a read-only transaction on the local
// standby. A standby refuses writes by itself, but grants advisory locks —
// which exclude only its own sessions, not the app's other nodes: a lock
// statement is refused before it runs, and one that took a lock anyway (a
// function) fails after, releasing what it can (session locks; a
// transaction lock ends with the transaction the app now rolls back).
func guardStandbyTx[T any](ctx context.Context, c *conn, query string, run func() (T, error)) (T, error) {
	var zero T
	r := c.node().analyze(c, query)
	switch {
	case r.Class == router.SessionBound && r.Bound != router.BoundAdvisoryLock:
		// currval, a temporary object, LISTEN: the replica's session has
		// none of the primary's state, and PostgreSQL refuses the rest.
		return zero, &SessionStateError{Statement: query, What: r.Bound.String(), ReadOnlyTx: true,
			Alternative: "use a read-write db.BeginTx, which runs on the primary: " + r.Bound.Alternative()}
	case r.Class == router.SessionBound || r.Class == router.Write && r.Bound == router.NotBound && mentionsAdvisoryLock(query):
		return zero, &SessionStateError{Statement: query, What: router.BoundAdvisoryLock.String(), ReadOnlyTx: true,
			Alternative: "it would be held on the local replica, excluding nobody on the primary: take it in a read-write db.BeginTx"}
	}
	v, err := run()
	if err != nil || r.Class == router.Read {
		return v, err
	}
	if rows, ok := any(v).(driver.Rows); ok {
		pr, err := prefetch(rows)
		if err != nil {
			return zero, err
		}
		v = any(pr).(T)
	}
	if err := c.releaseLocalLocks(ctx); err != nil {
		return zero, err
	}
	return v, nil
}

// mentionsAdvisoryLock is a cheap pre-check for transaction-scoped advisory
// lock calls, which the router classifies as plain writes.
func mentionsAdvisoryLock(query string) bool {
	return strings.Contains(strings.ToLower(query), "advisory")
}
