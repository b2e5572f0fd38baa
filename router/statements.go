package router

// Handlers for the statements whose class depends on more than their
// first word. Each stops before the ";" that ends its statement.

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
	bound, session := a.bound, a.session
	inner, _ := a.statement(nesting + 1)
	if !analyze {
		// Nothing executes: whatever the statement would have done to the
		// session does not happen either.
		a.bound, a.session = bound, session
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
//
// On the way it records a temporary object: CREATE [OR REPLACE] [LOCAL |
// GLOBAL] TEMP[ORARY] …, or an object named pg_temp.name (before the
// first "(" or AS), unless the table is created ON COMMIT DROP. The query
// of CREATE TABLE … AS and CREATE MATERIALIZED VIEW … AS runs at once, so
// it is scanned for session effects like any other query; the bodies of
// views, rules and routines only run later, elsewhere.
func (a *analyzer) create() {
	lx := &a.lx
	t := lx.next()
	if lx.is(t, "or") {
		if t = lx.next(); lx.is(t, "replace") {
			t = lx.next()
		}
	}
	if lx.is(t, "local") || lx.is(t, "global") {
		t = lx.next()
	}
	temp := lx.is(t, "temp") || lx.is(t, "temporary")
	if temp {
		t = lx.next()
	}
	if lx.is(t, "unlogged") {
		t = lx.next()
	}
	routine := lx.is(t, "function") || lx.is(t, "procedure")
	ctas := lx.is(t, "table") || lx.is(t, "materialized")
	named, onCommitDrop := false, false
	parens, blocks := 0, 0
	var p1, p2 token // the previous two tokens
loop:
	for ; ; t = lx.next() {
		switch t.kind {
		case tEOF:
			lx.unread(t)
			break loop
		case tSemi:
			if parens == 0 && blocks == 0 {
				lx.unread(t)
				break loop
			}
		case tLParen:
			parens++
			named = true
		case tRParen:
			parens = max(parens-1, 0)
		case tDot:
			if !named && parens == 0 && lx.isTempSchema(p1) {
				temp = true
			}
		case tWord:
			if parens == 0 && lx.is(t, "drop") && lx.is(p1, "commit") && lx.is(p2, "on") {
				onCommitDrop = true
			}
			if parens == 0 && lx.is(t, "as") && !routine {
				named = true
				if ctas {
					a.query(false) // runs to the statement's end
					break loop
				}
			}
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
		p2, p1 = p1, t
	}
	if temp && !onCommitDrop {
		a.bind(BoundTempObject)
	}
}
