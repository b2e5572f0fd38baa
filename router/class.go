package router

import "strconv"

// Class says where a statement may run. The constants are ordered by how
// much routing care they need: when one query string holds several
// statements, the greatest class wins (see Analyze for the one exception,
// a complete BEGIN … COMMIT block).
type Class uint8

const (
	// Read statements run on the local hot standby: SELECT, VALUES, TABLE,
	// SHOW, EXPLAIN without ANALYZE, COPY … TO, FETCH, WITH without a
	// data-modifying CTE, and queries that call only known side-effect-free
	// functions. Text with no statement at all (empty, or only comments)
	// is a Read too: PostgreSQL answers it with an empty response anywhere.
	Read Class = iota + 1

	// Session statements change only the state of the connection they run
	// on: SET (also SET LOCAL, SET TRANSACTION, SET ROLE), RESET, DISCARD,
	// DEALLOCATE, CLOSE, LOAD. A standby accepts them. SHOW is a Read.
	Session

	// Unsure statements look like reads but call something that may have
	// side effects: a function that is not a well-known pure builtin, or
	// EXECUTE of a prepared statement. Try them on the standby; if it
	// answers SQLSTATE 25006 (read_only_sql_transaction), run them as a
	// write.
	Unsure

	// Write statements must run on the primary: DML, DDL, COPY … FROM,
	// CALL, DO, maintenance commands, LOCK, NOTIFY, row-locking and
	// SELECT … INTO queries, sequence and advisory-lock functions, EXPLAIN
	// ANALYZE of a write, and anything the classifier does not recognise
	// (the primary then reports the syntax error).
	Write

	// TxControl is transaction control written as SQL text: BEGIN, START
	// TRANSACTION, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE,
	// PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED. Per-statement routing
	// cannot honour it, so a replica-region driver refuses it outside a
	// transaction of its own; inside one (BeginTx), where e.g. GORM sends
	// SAVEPOINT, every statement goes where the transaction runs anyway.
	TxControl

	// Listen is LISTEN or UNLISTEN, which cannot work on a standby (no
	// notifications are ever delivered there).
	Listen
)

var classNames = [...]string{
	Read:      "Read",
	Session:   "Session",
	Unsure:    "Unsure",
	Write:     "Write",
	TxControl: "TxControl",
	Listen:    "Listen",
}

// String returns the constant's name, e.g. "Read", or "Class(N)" for a
// value that is not one of the constants (such as the zero Class).
func (c Class) String() string {
	if c >= Read && int(c) < len(classNames) {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Result is the classification of one query string.
type Result struct {
	// Class is the routing decision for the whole string.
	Class Class
	// Statements is the number of non-empty statements in the string.
	Statements int
	// ExplainAnalyze is set when a statement is EXPLAIN ANALYZE, which
	// executes the explained statement.
	ExplainAnalyze bool

	seen uint8 // bit c set when some statement has Class c
}

// Has reports whether any single statement of the string has class c. It
// tells a caller what a multi-statement string contains beyond its overall
// Class, e.g. that a Write also SETs session state
// (r.Class == Write && r.Has(Session)), or that a Read or Write string is
// a complete BEGIN … COMMIT block (r.Has(TxControl)).
func (r Result) Has(c Class) bool {
	return c < 8 && r.seen&(1<<c) != 0
}
