package router

// tokKind is the coarse shape of a token. The classifier never needs the
// value of a literal, only where literals begin and end, so that keywords
// inside strings, comments and quoted identifiers are never mistaken for
// statements.
type tokKind uint8

const (
	tEOF    tokKind = iota
	tWord           // unquoted identifier or keyword
	tQIdent         // "quoted identifier" or U&"…"
	tString         // '…', E'…', U&'…', B'…', X'…', N'…', $tag$…$tag$
	tNumber
	tParam // $1
	tLParen
	tRParen
	tSemi
	tComma
	tDot
	tOp // any other punctuation or operator character
)

// token is a half-open byte range of the query plus its kind. It holds no
// string so that lexing never allocates.
type token struct {
	kind       tokKind
	start, end int
}

// lexer splits SQL text into tokens following PostgreSQL's scan.l closely
// enough for classification, assuming standard_conforming_strings = on (the
// default since 9.1): in a plain '…' string a backslash is an ordinary
// character. Malformed input (an unterminated string or comment) yields a
// token that runs to the end of the text; the lexer never fails.
type lexer struct {
	s      string
	pos    int
	back   token // one token of push-back, see unread
	hasBak bool
}

func (lx *lexer) unread(t token) {
	lx.back, lx.hasBak = t, true
}

func (lx *lexer) next() token {
	if lx.hasBak {
		lx.hasBak = false
		return lx.back
	}
	s := lx.s
	i := lx.pos
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = skipLineComment(s, i+2)
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = skipBlockComment(s, i+2)
			continue
		}
		break
	}
	if i >= len(s) {
		lx.pos = len(s)
		return token{kind: tEOF, start: len(s), end: len(s)}
	}
	start := i
	kind, end := lexOne(s, i)
	lx.pos = end
	return token{kind: kind, start: start, end: end}
}

// lexOne reads the token that starts at s[i], which is not blank and not
// the start of a comment.
func lexOne(s string, i int) (tokKind, int) {
	c := s[i]
	switch c {
	case '(':
		return tLParen, i + 1
	case ')':
		return tRParen, i + 1
	case ';':
		return tSemi, i + 1
	case ',':
		return tComma, i + 1
	case '\'':
		return tString, skipQuoted(s, i+1, '\'', false)
	case '"':
		return tQIdent, skipQuoted(s, i+1, '"', false)
	case '$':
		if i+1 < len(s) && isDigit(s[i+1]) {
			j := i + 1
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			return tParam, j
		}
		if end, ok := skipDollarQuoted(s, i); ok {
			return tString, end
		}
		return tOp, i + 1
	case '.':
		if i+1 < len(s) && isDigit(s[i+1]) {
			return tNumber, skipNumber(s, i+1)
		}
		return tDot, i + 1
	}
	if isDigit(c) {
		return tNumber, skipNumber(s, i+1)
	}
	if isIdentStart(c) {
		// String prefixes: E'…' takes backslash escapes; B, X and N are
		// plain; U&'…' and U&"…" are Unicode-escaped (their escapes use
		// a backslash but cannot hide a quote, so they lex as plain).
		if i+1 < len(s) {
			switch c | 0x20 {
			case 'e':
				if s[i+1] == '\'' {
					return tString, skipQuoted(s, i+2, '\'', true)
				}
			case 'b', 'x', 'n':
				if s[i+1] == '\'' {
					return tString, skipQuoted(s, i+2, '\'', false)
				}
			case 'u':
				if s[i+1] == '&' && i+2 < len(s) {
					switch s[i+2] {
					case '\'':
						return tString, skipQuoted(s, i+3, '\'', false)
					case '"':
						return tQIdent, skipQuoted(s, i+3, '"', false)
					}
				}
			}
		}
		j := i + 1
		for j < len(s) && isIdentCont(s[j]) {
			j++
		}
		return tWord, j
	}
	return tOp, i + 1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Bytes ≥ 0x80 are identifier characters, as in PostgreSQL: that covers
// every non-ASCII letter in UTF-8 without decoding it.
func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

func skipLineComment(s string, i int) int {
	for i < len(s) && s[i] != '\n' && s[i] != '\r' {
		i++
	}
	return i
}

// skipBlockComment skips a comment whose "/*" ends before i; PostgreSQL
// block comments nest.
func skipBlockComment(s string, i int) int {
	depth := 1
	for i < len(s) {
		switch {
		case s[i] == '*' && i+1 < len(s) && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		case s[i] == '/' && i+1 < len(s) && s[i+1] == '*':
			depth++
			i += 2
		default:
			i++
		}
	}
	return i
}

// skipQuoted skips to just past the closing quote q, where a doubled quote
// stands for itself and, if backslash is set (E'…'), a backslash escapes
// the next byte.
func skipQuoted(s string, i int, q byte, backslash bool) int {
	for i < len(s) {
		c := s[i]
		switch {
		case backslash && c == '\\':
			i += 2
		case c == q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		default:
			i++
		}
	}
	return len(s)
}

// skipDollarQuoted skips a $tag$…$tag$ string starting at s[i] == '$'. It
// reports false when s[i:] does not open one (e.g. a lone "$").
func skipDollarQuoted(s string, i int) (int, bool) {
	j := i + 1
	if j < len(s) && s[j] != '$' {
		if !isIdentStart(s[j]) {
			return 0, false
		}
		for j < len(s) && s[j] != '$' {
			// A tag is an identifier without '$'.
			if !isIdentStart(s[j]) && !isDigit(s[j]) {
				return 0, false
			}
			j++
		}
	}
	if j >= len(s) {
		return 0, false
	}
	delim := s[i : j+1]
	for k := j + 1; k+len(delim) <= len(s); k++ {
		if s[k] == '$' && s[k:k+len(delim)] == delim {
			return k + len(delim), true
		}
	}
	return len(s), true
}

func skipNumber(s string, i int) int {
	for i < len(s) {
		c := s[i]
		switch {
		case isDigit(c) || c == '.' || c == '_' || isIdentStart(c) && c < 0x80:
			// Letters cover exponents and 0x/0o/0b prefixes; what PostgreSQL
			// would reject as "trailing junk" is harmless here.
			if (c == 'e' || c == 'E') && i+1 < len(s) && (s[i+1] == '+' || s[i+1] == '-') {
				i++
			}
			i++
		default:
			return i
		}
	}
	return i
}

// text returns the token's source text; slicing a string does not allocate.
func (lx *lexer) text(t token) string { return lx.s[t.start:t.end] }

// is reports whether t is the unquoted word kw, ignoring ASCII case. kw must
// be lower case.
func (lx *lexer) is(t token, kw string) bool {
	return t.kind == tWord && t.end-t.start == len(kw) && eqFold(lx.s[t.start:t.end], kw)
}

func eqFold(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// maxWord bounds the words looked up in the keyword table; longer words are
// never keywords nor known functions.
const maxWord = 64

// lowerWord lowers t's ASCII letters into buf and returns the result; ok is
// false for words too long to be in any table. Using the result only as a
// map key (m[string(b)]) keeps the lookup allocation-free.
func (lx *lexer) lowerWord(t token, buf *[maxWord]byte) ([]byte, bool) {
	w := lx.s[t.start:t.end]
	if len(w) > maxWord {
		return nil, false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(w)], true
}
