package flypg

import (
	"context"
	"errors"
	"fmt"

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
		if n.readOnlyRefusal(err) {
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
	l := afterLSN(ctx)
	if l == 0 {
		return true
	}
	return c.db.wait(ctx, l) == nil
}
