package flypg

import (
	"errors"
	"fmt"

	"github.com/flypg/flypg/router"
)

var (
	// errTxControlText refuses BEGIN/COMMIT/… sent as SQL text in a replica
	// region: the transaction would be split between the replica and the
	// primary. database/sql's BeginTx is the way in.
	errTxControlText = errors.New("flypg: transaction control as SQL text (BEGIN, COMMIT, SAVEPOINT, …) is not supported in a replica region; use db.BeginTx")
	// errListen refuses LISTEN on a replica: notifications are raised on the
	// primary and never reach a standby's sessions.
	errListen = errors.New("flypg: LISTEN/UNLISTEN cannot work on a read replica: notifications are only delivered on the primary; connect a listener to the primary directly")
)

func refuse(cls router.Class, query string) error {
	if cls == router.Listen {
		return errListen
	}
	return fmt.Errorf("%w (statement: %.60q)", errTxControlText, query)
}

// classify is the node's cached statement classifier.
func (n *Node) classify(query string) router.Class { return n.classifier.Classify(query) }

// readOnlyRefusal reports whether err is the replica refusing a statement
// as a write (SQLSTATE 25006 read_only_sql_transaction): the replica is the
// final judge of what is a write.
func (n *Node) readOnlyRefusal(err error) bool {
	return err != nil && n.backend.sqlState(err) == "25006"
}

// dispatch runs an autocommit statement of a routing connection where its
// class says: a write on the primary; a read (or a read that may write) on
// the replica first — the replica is the final judge, and what it refuses
// as a write (SQLSTATE 25006) is forwarded once; session statements
// locally; transaction control as text and LISTEN nowhere.
func dispatch[T any](c *conn, query string, local, remote func() (T, error)) (T, error) {
	var zero T
	switch cls := c.node.classify(query); cls {
	case router.Write:
		return remote()
	case router.TxControl, router.Listen:
		return zero, refuse(cls, query)
	case router.Read, router.Unsure:
		c.node.counters.local.Add(1)
		v, err := local()
		if c.node.readOnlyRefusal(err) {
			c.node.counters.retried.Add(1)
			return remote()
		}
		return v, err
	}
	c.node.counters.local.Add(1)
	return local()
}
