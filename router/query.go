package router

// A query (SELECT, VALUES, TABLE, WITH, or any of them in parentheses) is
// scanned once, left to right, keeping one small state per parenthesis
// level. What makes a query a Write:
//
//   - a level whose statement is INSERT/UPDATE/DELETE/MERGE: a
//     data-modifying CTE body, or the main statement after a WITH list;
//   - INTO (SELECT … INTO creates a table; INTO TEMP a SessionBound one);
//   - FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE (a standby cannot
//     take row locks);
//   - a call of a function in writeList (or a session-bound one).
//
// A call of a function that is neither in pureList nor a keyword makes it
// Unsure. Only the first word of a level can start a statement, so
// "update" as a column or table alias, and "delete" as a quoted column,
// never count. The scan always runs to the statement's end, however early
// it knows the statement is a Write, because a later call can still make
// it SessionBound or change session state.

// levelState is what the scanner knows about one parenthesis level.
type levelState uint8

const (
	lvStart levelState = iota // nothing seen yet at this level
	lvWith                    // inside a WITH list, before its main statement
	lvQuery                   // a SELECT/VALUES/TABLE query
	lvExpr                    // an expression, argument list, column list, …
	lvDML                     // INSERT/UPDATE/DELETE/MERGE: INTO is not SELECT … INTO
)

type level struct {
	state      levelState
	distinctOn bool // the "(" of DISTINCT ON (…)
}

// maxLevels bounds the per-level state kept on the stack; deeper levels
// share the last slot, which can only make the scanner see a statement
// start where there is none (erring towards Write).
const maxLevels = 32

// query classifies a query and stops at the ";" or end that ends it or, if
// stopOnClose is set, just after an unmatched ")" (COPY (query) TO …).
func (a *analyzer) query(stopOnClose bool) Class {
	lx := &a.lx
	var levels [maxLevels]level
	depth := 0
	cls := Read
	var p1, p2, p3 token // the previous three tokens, p1 the latest
	var d1, d2 bool      // p1 (p2) is the ")" that closes DISTINCT ON (…)
	for {
		t := lx.next()
		afterDistinctOn := false
		switch t.kind {
		case tEOF, tSemi:
			lx.unread(t)
			return cls
		case tLParen:
			if (p1.kind == tWord || p1.kind == tQIdent) && levels[min(depth, maxLevels-1)].state != lvWith {
				cls = max(cls, a.call(p1, p2, p3, d2))
			}
			depth++
			levels[min(depth, maxLevels-1)] = level{distinctOn: lx.is(p1, "on") && lx.is(p2, "distinct")}
		case tRParen:
			if depth == 0 {
				if stopOnClose {
					return cls
				}
				break // unbalanced: PostgreSQL will reject it anyway
			}
			afterDistinctOn = levels[min(depth, maxLevels-1)].distinctOn
			depth--
		case tWord:
			if a.word(t, &levels[min(depth, maxLevels-1)]) {
				cls = Write
			}
		}
		p3, p2, p1 = p2, p1, t
		d2, d1 = d1, afterDistinctOn
	}
}

// word updates lv for the word t and reports whether t makes the query a
// Write.
func (a *analyzer) word(t token, lv *level) bool {
	lx := &a.lx
	switch lv.state {
	case lvStart:
		switch {
		case lx.is(t, "with"):
			lv.state = lvWith
			return false
		case lx.is(t, "select") || lx.is(t, "values") || lx.is(t, "table"):
			lv.state = lvQuery
			return false
		}
		lv.state = lvExpr
		if a.dmlStarts(t) {
			lv.state = lvDML
			return true
		}
		// Not a statement: "(SELECT …) FOR UPDATE" puts FOR first at
		// its level; check it like any other word below.
	case lvWith:
		// CTE names, AS, [NOT] MATERIALIZED, SEARCH/CYCLE clauses, and
		// then the main statement.
		switch {
		case lx.is(t, "select") || lx.is(t, "table"):
			lv.state = lvQuery
		case lx.is(t, "values") || isDML(lx, t):
			n := lx.next()
			lx.unread(n)
			if n.kind == tLParen || lx.is(n, "as") {
				return false // a CTE named e.g. "update"
			}
			lv.state = lvQuery
			if a.dmlStarts(t) {
				lv.state = lvDML
				return true
			}
		}
		return false
	case lvDML:
		return false // INSERT INTO / MERGE INTO name a table, not SELECT … INTO
	}
	// lvStart (not a statement), lvQuery, lvExpr
	switch {
	case lx.is(t, "into"):
		if a.intoTemp() {
			a.bind(BoundTempObject)
		}
		return true
	case lx.is(t, "for"):
		n := lx.next()
		lx.unread(n)
		return lx.is(n, "update") || lx.is(n, "share") || lx.is(n, "no") || lx.is(n, "key")
	}
	return false
}

// calls scans the rest of a statement that is a Write whatever it holds —
// INSERT, UPDATE, DELETE, MERGE, CALL — for the session effects of the
// functions it calls (a session lock in a WHERE clause, currval in
// VALUES, set_config anywhere), and stops before the ";" or end that ends
// it.
func (a *analyzer) calls() {
	lx := &a.lx
	var p1, p2, p3 token // the previous three tokens, p1 the latest
	for {
		t := lx.next()
		switch t.kind {
		case tEOF, tSemi:
			lx.unread(t)
			return
		case tLParen:
			if (p1.kind == tWord || p1.kind == tQIdent) && (p2.kind != tDot || lx.identIs(p3, "pg_catalog")) {
				a.effects(lx.nameFlags(p1) &^ (wWrite | wPure))
			}
		}
		p3, p2, p1 = p2, p1, t
	}
}

// intoTemp reports whether the tokens after SELECT … INTO name a temporary
// table: INTO [LOCAL | GLOBAL] TEMP[ORARY] …, or INTO [UNLOGGED] [TABLE]
// pg_temp.name. It consumes nothing.
func (a *analyzer) intoTemp() bool {
	saved := a.lx
	lx := &a.lx
	t := lx.next()
	if lx.is(t, "local") || lx.is(t, "global") {
		t = lx.next()
	}
	temp := lx.is(t, "temp") || lx.is(t, "temporary")
	if !temp {
		if lx.is(t, "unlogged") {
			t = lx.next()
		}
		if lx.is(t, "table") {
			t = lx.next()
		}
		temp = lx.isTempSchema(t) && lx.next().kind == tDot
	}
	a.lx = saved
	return temp
}

func isDML(lx *lexer, t token) bool {
	return lx.is(t, "insert") || lx.is(t, "update") || lx.is(t, "delete") || lx.is(t, "merge")
}

// dmlStarts reports whether t, a word in statement position, starts a
// data-modifying statement, looking at the token after it so that a column
// named update in "(update)" or "(update + 1)" does not count.
func (a *analyzer) dmlStarts(t token) bool {
	lx := &a.lx
	if !isDML(lx, t) {
		return false
	}
	n := lx.next()
	lx.unread(n)
	switch {
	case lx.is(t, "insert"), lx.is(t, "merge"):
		return lx.is(n, "into")
	case lx.is(t, "delete"):
		return lx.is(n, "from")
	}
	// UPDATE [ONLY] table: a table name is never a keyword like IS, AND
	// or BETWEEN that could follow a column named update.
	return n.kind == tQIdent || n.kind == tWord && (lx.is(n, "only") || lx.wordInfo(n)&wKw == 0)
}

// call classifies "name(" where name is p1, preceded by p2 and p3:
// Write for a side-effecting function, Unsure for an unknown one, Read for
// a known pure builtin, a keyword, a type modifier, or a table alias with
// a column list ("AS t(a, b)", "generate_series(1, 3) g(i)"). It records
// the call's session effects.
func (a *analyzer) call(name, p2, p3 token, afterDistinctOn bool) Class {
	lx := &a.lx
	if p2.kind == tDot {
		// Schema-qualified: only pg_catalog's builtins are known.
		if !lx.identIs(p3, "pg_catalog") {
			return Unsure
		}
		return a.effects(lx.nameFlags(name) &^ wKw)
	}
	f := lx.nameFlags(name)
	if f&(wWrite|wSession|wAdvisory|wSequence) != 0 {
		return a.effects(f)
	}
	if f&(wKw|wPure) != 0 {
		return Read
	}
	switch p2.kind {
	case tRParen:
		if !afterDistinctOn {
			return Read
		}
	case tQIdent:
		return Read
	case tWord:
		if lx.is(p2, "as") || lx.wordInfo(p2)&wKw == 0 {
			return Read
		}
	}
	return Unsure
}

// effects records the session effects of calling a function with flags f
// and returns the call's class.
func (a *analyzer) effects(f wordFlags) Class {
	switch {
	case f&wAdvisory != 0:
		a.bind(BoundAdvisoryLock)
		return Write
	case f&wSequence != 0:
		a.bind(BoundSequenceState)
		return Write
	case f&wWrite != 0:
		return Write
	case f&wSession != 0:
		a.session = true
		return Read
	case f&wPure != 0:
		return Read
	}
	return Unsure
}
