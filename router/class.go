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
	// DEALLOCATE, CLOSE, LOAD, UNLISTEN, and a query that is otherwise a
	// read but calls set_config or setseed. A standby accepts them; they
	// run on the caller's local connection, as the wrapped driver would run
	// them on its session. SHOW is a Read.
	Session

	// Unsure statements look like reads but call something that may have
	// side effects: a function that is not a well-known pure builtin, or
	// EXECUTE of a prepared statement. Try them on the standby; if it
	// answers SQLSTATE 25006 (read_only_sql_transaction), run them as a
	// write.
	Unsure

	// Write statements must run on the primary: DML, DDL, COPY … FROM,
	// CALL, DO, maintenance commands, LOCK, NOTIFY, row-locking and
	// SELECT … INTO queries, nextval/setval, transaction-scoped advisory
	// locks, EXPLAIN ANALYZE of a write, and anything the classifier does
	// not recognise (the primary then reports the syntax error).
	Write

	// TxControl is transaction control written as SQL text: BEGIN, START
	// TRANSACTION, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE,
	// PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED. Per-statement routing
	// cannot honour it, so a replica-region driver refuses it outside a
	// transaction of its own; inside one (BeginTx), where e.g. GORM sends
	// SAVEPOINT, every statement goes where the transaction runs anyway.
	TxControl

	// SessionBound statements leave state in their session that the caller
	// means to use after the statement, and that no per-statement route can
	// keep for it: a session advisory lock (pg_advisory_lock,
	// pg_try_advisory_lock and their _shared forms, and the unlock
	// functions), sequence state read back with currval or lastval, a
	// temporary object (CREATE TEMP …, CREATE … pg_temp.name, SELECT … INTO
	// TEMP), or LISTEN. On the standby such state is taken where the
	// primary's sessions never see it (a lock there excludes nobody), or is
	// refused; forwarded in autocommit it lands on a pooled primary
	// connection that the serving node retires afterwards (or, for
	// currval/lastval, reads a value another caller's nextval left there).
	// A replica-region driver refuses it; Result.Bound says which kind, and
	// Bound.Alternative what works instead.
	//
	// It is the greatest class: a string with any SessionBound statement is
	// SessionBound, even inside a complete BEGIN … COMMIT block, because
	// session locks, temporary objects and LISTEN outlive the COMMIT.
	SessionBound

	// Listen is the former class of LISTEN and UNLISTEN.
	//
	// Deprecated: LISTEN is SessionBound with Bound == BoundListen, and
	// UNLISTEN (a no-op a standby accepts) is Session. Listen is SessionBound
	// under its old name, so that a driver switch written for it refuses
	// every SessionBound statement.
	Listen = SessionBound
)

var classNames = [...]string{
	Read:         "Read",
	Session:      "Session",
	Unsure:       "Unsure",
	Write:        "Write",
	TxControl:    "TxControl",
	SessionBound: "SessionBound",
}

// String returns the constant's name, e.g. "Read", or "Class(N)" for a
// value that is not one of the constants (such as the zero Class).
func (c Class) String() string {
	if c >= Read && int(c) < len(classNames) {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Bound says what session state makes a statement SessionBound.
type Bound uint8

const (
	// NotBound is the Bound of every Result whose Class is not
	// SessionBound.
	NotBound Bound = iota
	// BoundAdvisoryLock: a session-level advisory lock is taken or released
	// (pg_advisory_lock, pg_advisory_lock_shared, pg_try_advisory_lock,
	// pg_try_advisory_lock_shared, pg_advisory_unlock,
	// pg_advisory_unlock_shared, pg_advisory_unlock_all).
	BoundAdvisoryLock
	// BoundSequenceState: currval or lastval reads what an earlier nextval
	// left in the session.
	BoundSequenceState
	// BoundTempObject: a temporary table, view, sequence or other object is
	// created (CREATE TEMP …, CREATE … pg_temp.name, SELECT … INTO TEMP),
	// except CREATE TEMP TABLE … ON COMMIT DROP, which cannot outlive its
	// transaction and is a Write.
	BoundTempObject
	// BoundListen: LISTEN, whose notifications are delivered only to
	// sessions on the primary.
	BoundListen
)

var boundNames = [...]string{
	NotBound:           "none",
	BoundAdvisoryLock:  "advisory lock",
	BoundSequenceState: "sequence state",
	BoundTempObject:    "temporary object",
	BoundListen:        "listen",
}

// String returns a short lower-case description, e.g. "advisory lock", for
// use in an error message, or "Bound(N)" for a value that is not one of the
// constants.
func (b Bound) String() string {
	if int(b) < len(boundNames) {
		return boundNames[b]
	}
	return "Bound(" + strconv.Itoa(int(b)) + ")"
}

var boundAlternatives = [...]string{
	BoundAdvisoryLock: "take a transaction-scoped lock (pg_advisory_xact_lock, pg_try_advisory_xact_lock) inside db.BeginTx, " +
		"where every statement runs on one primary connection, or hold the session lock on a connection of your own to the primary",
	BoundSequenceState: "read the generated value with INSERT … RETURNING, or call nextval and currval inside one db.BeginTx",
	BoundTempObject: "create and use it inside one db.BeginTx (ON COMMIT DROP lets it end with the transaction), " +
		"or use a connection of your own to the primary",
	BoundListen: "listen on a connection of your own to the primary: notifications are only delivered there",
}

// Alternative says, in a sentence fragment a driver can put in its error
// message, what works instead of the refused statement. It is empty for
// NotBound.
func (b Bound) Alternative() string {
	if int(b) < len(boundAlternatives) {
		return boundAlternatives[b]
	}
	return ""
}

// Result is the classification of one query string.
//
// Its small fields come first, so that it packs into 16 bytes: a cache hit
// copies it in one move.
type Result struct {
	// Class is the routing decision for the whole string.
	Class Class
	// Bound is what makes the string SessionBound: the kind of the first
	// session-bound statement in it. It is NotBound for every other Class.
	Bound Bound
	// ExplainAnalyze is set when a statement is EXPLAIN ANALYZE, which
	// executes the explained statement.
	ExplainAnalyze bool

	seen uint8 // bit c set when some statement has Class c

	// Statements is the number of non-empty statements in the string.
	Statements int
}

// Has reports whether any single statement of the string has class c. It
// tells a caller what a multi-statement string contains beyond its overall
// Class, e.g. that a Write also changes session state
// (r.Class == Write && r.Has(Session): SET …; INSERT …, or a set_config
// call inside the write), or that a Read or Write string is a complete
// BEGIN … COMMIT block (r.Has(TxControl)).
func (r Result) Has(c Class) bool {
	return c < 8 && r.seen&(1<<c) != 0
}
