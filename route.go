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

// judgedByReplica reports whether a statement of class cls runs on the
// replica first and is forwarded only if the replica refuses it as a write.
func judgedByReplica(cls router.Class) bool { return cls == router.Read || cls == router.Unsure }
