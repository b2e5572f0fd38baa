package router

// tokKind is the coarse shape of a token. The classifier never needs the
// value of a literal, only where literals begin and end, so that keywords
// inside strings, comments and quoted identifiers are never mistaken for
// statements.
type tokKind uint8

const (
	tEOF    tokKind = iota
	tWord           // unquoted identifier or keyword
	tQIdent         // "quoted identifier" or U&"…" [UESCAPE '…']
	tString         // '…', E'…', U&'…' [UESCAPE '…'], B'…', X'…', N'…', $tag$…$tag$
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
// enough for classification: wherever the classifier's idea of where a
// string, comment or identifier ends could differ from the server's, a
// keyword or function call could hide from it. Malformed input (an
// unterminated string or comment) yields a token that runs to the end of
// the text; the lexer never fails.
//
// Where PostgreSQL versions differ, it follows the one that runs the
// most: PostgreSQL 14 lexes 1e'…' as the number 1 and an escape string,
// and 1abc as a number and an identifier, where 15 and later reject both
// as "trailing junk" (so nothing runs there at all).
type lexer struct {
	s string
	// nonStd is standard_conforming_strings = off: a plain '…' (or N'…')
	// string takes backslash escapes like E'…'.
	nonStd bool
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
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t') {
		i++ // the common case, without a call
	}
	if i < len(s) && (s[i] == '-' || s[i] == '/' || isSpace(s[i])) {
		i = skipSpace(s, i)
	}
	if i >= len(s) {
		lx.pos = len(s)
		return token{kind: tEOF, start: len(s), end: len(s)}
	}
	kind, end := lx.lexOne(i)
	lx.pos = end
	return token{kind: kind, start: i, end: end}
}

// skipSpace skips whitespace and comments from s[i].
func skipSpace(s string, i int) int {
	for i < len(s) {
		c := s[i]
		switch {
		case isSpace(c):
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = skipLineComment(s, i+2)
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = skipBlockComment(s, i+2)
		default:
			return i
		}
	}
	return i
}

// isSpace is scan.l's {space}. \v is whitespace since PostgreSQL 16; to
// PostgreSQL 15 it is a syntax error, so nothing runs there either way.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// How the body of a single-quoted string is scanned, as scan.l's states.
type quoteMode uint8

const (
	qPlain  quoteMode = iota // xq, xus: '' is a quote, \ is a character
	qEscape                  // xe: '' is a quote, \ escapes the next byte
	qBits                    // xb, xh: no escapes at all, not even ''
)

// lexOne reads the token that starts at s[i], which is not blank and not
// the start of a comment.
func (lx *lexer) lexOne(i int) (tokKind, int) {
	s := lx.s
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
		return tString, skipString(s, i+1, lx.plainMode())
	case '"':
		return tQIdent, skipIdent(s, i+1)
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
			return tNumber, skipNumber(s, i)
		}
		return tDot, i + 1
	}
	if isDigit(c) {
		return tNumber, skipNumber(s, i)
	}
	if isIdentStart(c) {
		// String prefixes, which scan.l only recognises at the start of a
		// token: E'…' takes backslash escapes; B'…' and X'…' take no
		// escapes at all; N'…' is a plain string (so it follows
		// standard_conforming_strings); U&'…' and U&"…" are
		// Unicode-escaped, which cannot hide a quote, and may be followed
		// by UESCAPE '…', which the token then includes.
		if i+1 < len(s) {
			switch c | 0x20 {
			case 'e':
				if s[i+1] == '\'' {
					return tString, skipString(s, i+2, qEscape)
				}
			case 'b', 'x':
				if s[i+1] == '\'' {
					return tString, skipString(s, i+2, qBits)
				}
			case 'n':
				if s[i+1] == '\'' {
					return tString, skipString(s, i+2, lx.plainMode())
				}
			case 'u':
				if s[i+1] == '&' && i+2 < len(s) {
					switch s[i+2] {
					case '\'':
						return tString, lx.uescape(skipString(s, i+3, qPlain))
					case '"':
						return tQIdent, lx.uescape(skipIdent(s, i+3))
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

func (lx *lexer) plainMode() quoteMode {
	if lx.nonStd {
		return qEscape
	}
	return qPlain
}

// uescape extends a U&'…' or U&"…" token that ends before i over a
// following UESCAPE 'c' clause, as PostgreSQL's parser joins them, so that
// the identifier can be decoded (see identBytes).
func (lx *lexer) uescape(i int) int {
	s := lx.s
	j := skipSpace(s, i)
	const kw = "uescape"
	if j+len(kw) > len(s) || !eqFold(s[j:j+len(kw)], kw) || j+len(kw) < len(s) && isIdentCont(s[j+len(kw)]) {
		return i
	}
	// The escape is a plain string constant (or E'…'); PostgreSQL rejects
	// anything else, so nothing runs then and no merge is needed.
	switch j = skipSpace(s, j+len(kw)); {
	case j < len(s) && s[j] == '\'':
		return skipString(s, j+1, lx.plainMode())
	case j+1 < len(s) && s[j]|0x20 == 'e' && s[j+1] == '\'':
		return skipString(s, j+2, qEscape)
	}
	return i
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

// skipString skips the body of a single-quoted string starting at s[i],
// just after its opening quote, to just past its closing quote. Like
// scan.l, it continues the string over a closing quote that is followed by
// whitespace holding a newline and another quote ('a'⏎'b' is 'ab'), in the
// same mode: E'…'⏎'…' keeps its backslash escapes.
func skipString(s string, i int, mode quoteMode) int {
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\' && mode == qEscape:
			i += 2
		case c == '\'':
			if mode != qBits && i+1 < len(s) && s[i+1] == '\'' {
				i += 2
				continue
			}
			j, ok := continuation(s, i+1)
			if !ok {
				return i + 1
			}
			i = j
		default:
			i++
		}
	}
	return len(s)
}

// continuation reports whether the string that closed just before s[i]
// continues, and where its next part's body starts. scan.l's
// {quotecontinue} is {horiz_whitespace}*{newline}{special_whitespace}*
// and a quote, where horizontal whitespace includes -- comments and
// special whitespace is spaces, newlines, or a -- comment ending in a
// newline. A /* comment */ is not allowed in between.
func continuation(s string, i int) (int, bool) {
	for i < len(s) {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\f' || c == '\v' {
			i++
		} else if c == '-' && i+1 < len(s) && s[i+1] == '-' {
			i = skipLineComment(s, i+2)
		} else {
			break
		}
	}
	if i >= len(s) || s[i] != '\n' && s[i] != '\r' {
		return 0, false
	}
	for i < len(s) {
		c := s[i]
		if isSpace(c) {
			i++
		} else if c == '-' && i+1 < len(s) && s[i+1] == '-' {
			if i = skipLineComment(s, i+2); i >= len(s) {
				return 0, false // a comment must end in a newline here
			}
		} else {
			break
		}
	}
	if i < len(s) && s[i] == '\'' {
		return i + 1, true
	}
	return 0, false
}

// skipIdent skips the body of a quoted identifier starting at s[i], just
// after its opening quote, to just past its closing quote ("" stands for
// one).
func skipIdent(s string, i int) int {
	for i < len(s) {
		if s[i] == '"' {
			if i+1 < len(s) && s[i+1] == '"' {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(s)
}

// skipDollarQuoted skips a $tag$…$tag$ string starting at s[i] == '$'. It
// reports false when s[i:] does not open one (e.g. a lone "$"). A "$"
// inside an identifier (a$$b) never gets here: it is part of the word.
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

// skipNumber skips a numeric constant starting at s[i] (a digit, or a "."
// before one) as PostgreSQL 14 does: digits, an optional fraction ("1..2"
// is 1 and ..2), and an exponent only when digits follow the e. Whatever
// follows is the next token: 1e'…' is 1 and an escape string. (15 rejects
// an identifier character right after a number; 16 also reads 0x1F and
// 1_000 as numbers, which changes no token boundary that matters here.)
func skipNumber(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i < len(s) && s[i] == '.' && !(i+1 < len(s) && s[i+1] == '.') {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && s[i]|0x20 == 'e' {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for i = j; i < len(s) && isDigit(s[i]); i++ {
			}
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
