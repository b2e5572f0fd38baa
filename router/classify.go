package router

// Options describe the session a statement will run in, where that changes
// how its text must be read. The zero Options is PostgreSQL's default
// configuration.
type Options struct {
	// NonStandardStrings is standard_conforming_strings = off, under which
	// a backslash in a plain '…' or N'…' string escapes the next character
	// (as in E'…'): 'it\'s' is one string. A driver should set it from the
	// standard_conforming_strings parameter its connection reports
	// (pgconn.PgConn.ParameterStatus), since a session, role or database
	// can turn it off.
	NonStandardStrings bool
}

// Classify returns the routing class of query. It is Analyze(query).Class.
func Classify(query string) Class { return Analyze(query).Class }

// Analyze classifies query for a session with the default Options. It is
// AnalyzeOpts(query, Options{}).
func Analyze(query string) Result { return AnalyzeOpts(query, Options{}) }

// AnalyzeOpts classifies every statement of query, read as a session
// configured as o reads it, and combines them:
//
//   - no statement at all (empty text, only comments or semicolons): Read;
//   - any SessionBound statement: SessionBound, whatever else the string
//     holds (the state it leaves outlives a COMMIT, so not even a complete
//     block can contain it), with Result.Bound the first one's kind;
//   - a complete block — the first statement BEGIN or START TRANSACTION,
//     the last COMMIT/END/ROLLBACK/ABORT, and in between only
//     SAVEPOINT/RELEASE/ROLLBACK TO — takes the greatest class of the
//     statements inside it (Read if none): it is self-contained, so it can
//     run as a whole on the standby or be forwarded as a whole to the
//     primary, and Has(TxControl) reports the block;
//   - any other transaction control: TxControl;
//   - otherwise the greatest class: Read < Session < Unsure < Write.
//
// A statement whose only session effect is a set_config call is Session
// when it otherwise reads, and sets Has(Session) when it writes.
//
// AnalyzeOpts does not allocate, never panics and is deterministic; it
// does not cache. Use a Classifier to cache results.
func AnalyzeOpts(query string, o Options) Result { return analyze(query, o) }

// analyze is AnalyzeOpts. It is not inlined, so that callers' stack
// frames (a cache hit's above all) do not hold the analyzer's state.
//
//go:noinline
func analyze(query string, o Options) Result {
	a := analyzer{lx: lexer{s: query, nonStd: o.NonStandardStrings}}
	return a.run()
}

// txKind sorts transaction-control statements for the block rule.
type txKind uint8

const (
	txNone  txKind = iota
	txBegin        // BEGIN, START TRANSACTION
	txEnd          // COMMIT, END, ROLLBACK, ABORT
	txInner        // SAVEPOINT, RELEASE, ROLLBACK TO
	txOther        // 2PC, … AND CHAIN: leaves state a block cannot reason about
)

// maxNesting bounds EXPLAIN/PREPARE recursion so that hostile input cannot
// make the classifier recurse deeply.
const maxNesting = 4

type analyzer struct {
	lx             lexer
	explainAnalyze bool
	// What the current statement leaves in its session: the first
	// session-bound effect, and whether it changes settings.
	bound   Bound
	session bool
}

// bind records a session-bound effect of the current statement.
func (a *analyzer) bind(b Bound) {
	if a.bound == NotBound {
		a.bound = b
	}
}

func (a *analyzer) run() Result {
	var (
		r                   Result
		worst               Class // greatest class outside transaction control
		first, last         txKind
		begins, ends, other int
	)
	for {
		t := a.lx.next()
		if t.kind == tEOF {
			break
		}
		if t.kind == tSemi {
			continue
		}
		a.lx.unread(t)
		a.bound, a.session = NotBound, false
		c, tk := a.statement(0)
		a.skipStatement()
		if a.bound != NotBound {
			c = SessionBound
			if r.Bound == NotBound {
				r.Bound = a.bound
			}
		}
		if a.session {
			r.seen |= 1 << Session
			c = max(c, Session)
		}
		r.Statements++
		r.seen |= 1 << c
		if r.Statements == 1 {
			first = tk
		}
		last = tk
		switch tk {
		case txBegin:
			begins++
		case txEnd:
			ends++
		case txOther:
			other++
		case txNone:
			worst = max(worst, c)
		}
	}
	r.ExplainAnalyze = a.explainAnalyze
	switch {
	case r.Has(SessionBound):
		r.Class = SessionBound
	case r.Has(TxControl):
		r.Class = TxControl
		if r.Statements >= 2 && first == txBegin && last == txEnd && begins == 1 && ends == 1 && other == 0 {
			r.Class = max(worst, Read)
		}
	default:
		r.Class = max(worst, Read)
	}
	return r
}

// skipStatement consumes the rest of the current statement and its ";".
func (a *analyzer) skipStatement() {
	for {
		t := a.lx.next()
		switch t.kind {
		case tSemi:
			return
		case tEOF:
			a.lx.unread(t)
			return
		}
	}
}

// atEnd pushes t back and reports true if it ends the statement.
func (a *analyzer) atEnd(t token) bool {
	if t.kind == tSemi || t.kind == tEOF {
		a.lx.unread(t)
		return true
	}
	return false
}

// statement classifies one statement. It may stop before the statement's
// end; it never consumes the ";" that ends it. Session-bound effects and
// settings changes are recorded in a.bound and a.session.
func (a *analyzer) statement(nesting int) (Class, txKind) {
	lx := &a.lx
	t := lx.next()
	if t.kind == tLParen {
		lx.unread(t)
		return a.query(false), txNone
	}
	if t.kind != tWord || nesting > maxNesting {
		// Garbage, or a statement we cannot name: let the primary judge.
		a.atEnd(t)
		return Write, txNone
	}
	var buf [maxWord]byte
	w, _ := lx.lowerWord(t, &buf)
	switch stmtWords[string(w)] {
	case sQuery:
		lx.unread(t)
		return a.query(false), txNone
	case sDML:
		a.calls()
		return Write, txNone
	case sRead:
		return Read, txNone
	case sSession:
		return Session, txNone
	case sExplain:
		return a.explain(nesting), txNone
	case sCopy:
		return a.copy(), txNone
	case sDeclare:
		return a.declare(), txNone
	case sPrepare:
		return a.prepare(nesting)
	case sExecute:
		return Unsure, txNone
	case sListen:
		a.bind(BoundListen)
		return SessionBound, txNone
	case sDo:
		a.do()
		return Write, txNone
	case sBegin:
		return TxControl, txBegin
	case sStart:
		n := lx.next()
		if lx.is(n, "transaction") {
			return TxControl, txBegin
		}
		a.atEnd(n)
		return Write, txNone
	case sEnd:
		return TxControl, a.txEnd()
	case sSavepoint:
		return TxControl, txInner
	case sCreate:
		a.create()
		return Write, txNone
	}
	return Write, txNone
}

type stmtKind uint8

const (
	sWrite stmtKind = iota // also every word not in stmtWords
	sQuery
	sDML
	sRead
	sSession
	sExplain
	sCopy
	sDeclare
	sPrepare
	sExecute
	sListen
	sDo
	sBegin
	sStart
	sEnd
	sSavepoint
	sCreate
)

// stmtWords maps a statement's first word to how it is classified. Every
// other first word (TRUNCATE, ALTER, DROP, GRANT, VACUUM, LOCK, NOTIFY, …,
// and unknown words) is a Write.
var stmtWords = map[string]stmtKind{
	"select": sQuery, "values": sQuery, "table": sQuery, "with": sQuery,
	"insert": sDML, "update": sDML, "delete": sDML, "merge": sDML, "call": sDML,
	"show": sRead, "fetch": sRead, "move": sRead,
	"set": sSession, "reset": sSession, "discard": sSession,
	"deallocate": sSession, "close": sSession, "load": sSession,
	"unlisten": sSession,
	"explain":  sExplain, "copy": sCopy, "declare": sDeclare,
	"prepare": sPrepare, "execute": sExecute,
	"listen": sListen, "do": sDo,
	"begin": sBegin, "start": sStart,
	"commit": sEnd, "end": sEnd, "rollback": sEnd, "abort": sEnd,
	"savepoint": sSavepoint, "release": sSavepoint,
	"create": sCreate,
}
