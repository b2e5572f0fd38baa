package router

import "strings"

// do records the session effects of a DO block, whose body is opaque to a
// standby and to the primary's pool alike: the session-bound function
// calls, LISTEN, CREATE TEMP, SET/RESET and set_config calls it contains.
// The body is read as SQL (PL/pgSQL is close enough, and for other
// languages a call written out in SQL text is what counts), and so are the
// strings inside it, one level down, for dynamic SQL (EXECUTE '…').
func (a *analyzer) do() {
	lx := &a.lx
	for {
		t := lx.next()
		if a.atEnd(t) {
			return
		}
		if t.kind == tString {
			a.body(quotedBody(lx.text(t)), 0)
		}
	}
}

// maxBodyNesting is how many levels of strings inside a DO body are read.
const maxBodyNesting = 1

// body scans the text of a DO body (or of a string inside one).
func (a *analyzer) body(text string, nesting int) {
	bl := lexer{s: text, nonStd: a.lx.nonStd}
	var p1 token // the previous token; tEOF at the start
	for {
		t := bl.next()
		switch t.kind {
		case tEOF:
			return
		case tLParen:
			if p1.kind == tWord || p1.kind == tQIdent {
				a.effects(bl.nameFlags(p1) &^ (wWrite | wPure))
			}
		case tString, tQIdent:
			if nesting < maxBodyNesting {
				a.body(quotedBody(bl.text(t)), nesting+1)
			}
		case tWord:
			if !statementStart(&bl, p1) {
				break
			}
			switch {
			case bl.is(t, "listen"):
				n := bl.next()
				bl.unread(n)
				if n.kind == tWord || n.kind == tQIdent {
					a.bind(BoundListen)
				}
			case bl.is(t, "set") || bl.is(t, "reset"):
				a.session = true
			case bl.is(t, "create"):
				n := bl.next()
				if bl.is(n, "local") || bl.is(n, "global") {
					n = bl.next()
				}
				bl.unread(n)
				if bl.is(n, "temp") || bl.is(n, "temporary") {
					a.bind(BoundTempObject)
				}
			}
		}
		p1 = t
	}
}

// statementStart reports whether a word after prev starts a statement of
// a PL/pgSQL body: at its start, after ";", or after a keyword that opens
// a block or branch.
func statementStart(lx *lexer, prev token) bool {
	return prev.kind == tEOF || prev.kind == tSemi || lx.is(prev, "begin") || lx.is(prev, "then") ||
		lx.is(prev, "else") || lx.is(prev, "loop")
}

// quotedBody returns the text between the quotes of a string or quoted
// identifier token, as written (escapes and doubled quotes are left in:
// the body is only scanned for words and calls, and a stray quote can
// only hide or reveal a word, not make the statement run anywhere else).
func quotedBody(q string) string {
	if q == "" {
		return ""
	}
	if q[0] == '$' {
		end := 1 + strings.IndexByte(q[1:], '$') // the $ that closes the tag
		if end == 0 {
			return ""
		}
		delim, body := q[:end+1], q[end+1:]
		return strings.TrimSuffix(body, delim)
	}
	i := strings.IndexAny(q, `'"`) // past an E, B, X, N or U& prefix
	if i < 0 {
		return ""
	}
	body := q[i+1:]
	if n := len(body); n > 0 && body[n-1] == q[i] {
		body = body[:n-1]
	}
	return body
}
