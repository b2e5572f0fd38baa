package router

// Classify returns the routing class of query. It is Analyze(query).Class.
func Classify(query string) Class { return Analyze(query).Class }

// Analyze classifies every statement of query and combines them:
//
//   - no statement at all (empty text, only comments or semicolons): Read;
//   - any LISTEN/UNLISTEN: Listen;
//   - a complete block — the first statement BEGIN or START TRANSACTION,
//     the last COMMIT/END/ROLLBACK/ABORT, and in between only
//     SAVEPOINT/RELEASE/ROLLBACK TO — takes the greatest class of the
//     statements inside it (Read if none): it is self-contained, so it can
//     run as a whole on the standby or be forwarded as a whole to the
//     primary, and Has(TxControl) reports the block;
//   - any other transaction control: TxControl;
//   - otherwise the greatest class: Read < Session < Unsure < Write.
//
// Analyze does not allocate, never panics and is deterministic; it does not
// cache. Use a Classifier to cache results.
func Analyze(query string) Result {
	a := analyzer{lx: lexer{s: query}}
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
		c, tk := a.statement(0)
		a.skipStatement()
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
	case r.Has(Listen):
		r.Class = Listen
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
// end; it never consumes the ";" that ends it.
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
		return Listen, txNone
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
	sRead
	sSession
	sExplain
	sCopy
	sDeclare
	sPrepare
	sExecute
	sListen
	sBegin
	sStart
	sEnd
	sSavepoint
	sCreate
)

// stmtWords maps a statement's first word to how it is classified. Every
// other first word (INSERT, UPDATE, DELETE, MERGE, TRUNCATE, CALL, DO,
// ALTER, DROP, GRANT, VACUUM, LOCK, NOTIFY, …, and unknown words) is a
// Write.
var stmtWords = map[string]stmtKind{
	"select": sQuery, "values": sQuery, "table": sQuery, "with": sQuery,
	"show": sRead, "fetch": sRead, "move": sRead,
	"set": sSession, "reset": sSession, "discard": sSession,
	"deallocate": sSession, "close": sSession, "load": sSession,
	"explain": sExplain, "copy": sCopy, "declare": sDeclare,
	"prepare": sPrepare, "execute": sExecute,
	"listen": sListen, "unlisten": sListen,
	"begin": sBegin, "start": sStart,
	"commit": sEnd, "end": sEnd, "rollback": sEnd, "abort": sEnd,
	"savepoint": sSavepoint, "release": sSavepoint,
	"create": sCreate,
}

// txEnd sorts COMMIT/ROLLBACK/END/ABORT by what follows the first word.
func (a *analyzer) txEnd() txKind {
	lx := &a.lx
	kind := txEnd
	var prev token
	for {
		t := lx.next()
		if a.atEnd(t) {
			return kind
		}
		switch {
		case lx.is(t, "prepared"):
			kind = txOther // COMMIT PREPARED 'gid'
		case lx.is(t, "to"):
			kind = txInner // ROLLBACK TO [SAVEPOINT] name
		case lx.is(t, "chain") && !lx.is(prev, "no"):
			kind = txOther // … AND CHAIN opens the next transaction
		}
		prev = t
	}
}

// explain classifies EXPLAIN [ANALYZE] [VERBOSE] stmt and
// EXPLAIN (option [value], …) stmt. Without ANALYZE nothing executes, so it
// is a Read whatever it explains.
func (a *analyzer) explain(nesting int) Class {
	lx := &a.lx
	analyze := false
	t := lx.next()
	if t.kind == tLParen {
		var isQuery bool
		if analyze, isQuery = a.explainOptions(); isQuery {
			return Read // EXPLAIN (SELECT …): a parenthesised query, not options
		}
	} else {
		for lx.is(t, "analyze") || lx.is(t, "analyse") || lx.is(t, "verbose") {
			analyze = analyze || !lx.is(t, "verbose")
			t = lx.next()
		}
		lx.unread(t)
	}
	inner, _ := a.statement(nesting + 1)
	if !analyze {
		return Read
	}
	a.explainAnalyze = true
	if inner == Write || inner == Unsure {
		return inner
	}
	return Read
}

// explainOptions reads an EXPLAIN option list after its "(" and reports
// whether ANALYZE is on. PostgreSQL's boolean options take true/false,
// on/off or 1/0, bare or quoted; a bare name means true.
func (a *analyzer) explainOptions() (analyze, isQuery bool) {
	lx := &a.lx
	depth := 0
	expectName, lastWasAnalyze := true, false
	for i := 0; ; i++ {
		t := lx.next()
		if a.atEnd(t) {
			return analyze, false
		}
		if i == 0 && (t.kind == tLParen || lx.is(t, "select") || lx.is(t, "with") || lx.is(t, "values") || lx.is(t, "table")) {
			return false, true
		}
		switch t.kind {
		case tLParen:
			depth++
		case tRParen:
			if depth == 0 {
				return analyze, false
			}
			depth--
		case tComma:
			expectName = true
		case tWord, tString, tNumber:
			if depth > 0 {
				continue
			}
			if expectName {
				expectName = false
				lastWasAnalyze = lx.is(t, "analyze") || lx.is(t, "analyse")
				analyze = analyze || lastWasAnalyze
				continue
			}
			if lastWasAnalyze && isFalse(lx.text(t)) {
				analyze = false
			}
		}
	}
}

func isFalse(v string) bool {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = v[1 : len(v)-1]
	}
	return len(v) == 5 && eqFold(v, "false") || len(v) == 3 && eqFold(v, "off") || v == "0"
}

// copy classifies COPY: "COPY (query) TO" is the query's class (at least a
// Read), "COPY table … TO" a Read, "COPY table … FROM" a Write. COPY TO a
// server file or program is still a Read: it changes nothing in the
// database, though the file is written on whichever server runs it.
func (a *analyzer) copy() Class {
	lx := &a.lx
	t := lx.next()
	if lx.is(t, "binary") {
		t = lx.next()
	}
	if t.kind == tLParen {
		return max(a.query(true), Read)
	}
	depth := 0
	for ; ; t = lx.next() {
		if a.atEnd(t) {
			return Write
		}
		switch {
		case t.kind == tLParen:
			depth++
		case t.kind == tRParen:
			depth--
		case depth == 0 && lx.is(t, "from"):
			return Write
		case depth == 0 && lx.is(t, "to"):
			return Read
		}
	}
}

// declare classifies DECLARE name … CURSOR … FOR query by its query.
func (a *analyzer) declare() Class {
	lx := &a.lx
	for {
		t := lx.next()
		if a.atEnd(t) {
			return Write
		}
		if lx.is(t, "for") {
			return a.query(false)
		}
	}
}

// prepare classifies PREPARE name [(types)] AS stmt by stmt, and PREPARE
// TRANSACTION 'gid' as transaction control.
func (a *analyzer) prepare(nesting int) (Class, txKind) {
	lx := &a.lx
	t := lx.next()
	if lx.is(t, "transaction") {
		n := lx.next()
		if n.kind == tString {
			return TxControl, txOther
		}
		lx.unread(n)
	}
	depth := 0
	for ; ; t = lx.next() {
		if a.atEnd(t) {
			return Write, txNone
		}
		switch {
		case t.kind == tLParen:
			depth++
		case t.kind == tRParen:
			depth--
		case depth == 0 && lx.is(t, "as"):
			c, _ := a.statement(nesting + 1)
			return c, txNone
		}
	}
}

// create consumes a CREATE statement to its real end, as psql splits
// statements: a ";" inside parentheses (CREATE RULE … DO (INSERT …;
// DELETE …)) does not end it, nor does one inside the SQL-standard body of
// CREATE [OR REPLACE] FUNCTION/PROCEDURE (BEGIN ATOMIC … END), where, at
// parenthesis depth 0, BEGIN opens a block, CASE opens one inside a block
// and END closes one.
func (a *analyzer) create() {
	lx := &a.lx
	t := lx.next()
	if lx.is(t, "or") {
		if t = lx.next(); lx.is(t, "replace") {
			t = lx.next()
		}
	}
	routine := lx.is(t, "function") || lx.is(t, "procedure")
	parens, blocks := 0, 0
	for ; ; t = lx.next() {
		switch t.kind {
		case tEOF:
			lx.unread(t)
			return
		case tSemi:
			if parens == 0 && blocks == 0 {
				lx.unread(t)
				return
			}
		case tLParen:
			parens++
		case tRParen:
			parens = max(parens-1, 0)
		case tWord:
			switch {
			case !routine || parens != 0:
			case lx.is(t, "begin"):
				blocks++
			case lx.is(t, "case") && blocks > 0:
				blocks++
			case lx.is(t, "end") && blocks > 0:
				blocks--
			}
		}
	}
}
