package router

import "unicode/utf8"

// What an identifier token names, as PostgreSQL resolves it: function
// names are looked up and schema names compared by their decoded text, so
// that "pg_advisory_lock" and U&"pg\005fadvisory\005flock" are
// pg_advisory_lock too.

// identBytes returns the name an identifier token stands for, as
// PostgreSQL resolves it: an unquoted word lowered, a "quoted" one as
// written ("" standing for "), and a U&"…" one with its Unicode escapes
// decoded (with the escape character of its UESCAPE clause, if any). ok is
// false for other tokens, names longer than maxWord, and malformed
// escapes (which PostgreSQL rejects, so nothing runs).
func (lx *lexer) identBytes(t token, buf *[maxWord]byte) ([]byte, bool) {
	switch t.kind {
	case tWord:
		return lx.lowerWord(t, buf)
	case tQIdent:
	default:
		return nil, false
	}
	q := lx.text(t)
	unicode := q[0] != '"'
	if unicode {
		q = q[2:] // U&
	}
	end := skipIdent(q, 1)
	if end < 2 || q[end-1] != '"' {
		return nil, false // unterminated
	}
	body := q[1 : end-1]
	if !unicode {
		n := 0
		for i := 0; i < len(body); i++ {
			if n == maxWord {
				return nil, false
			}
			buf[n] = body[i]
			n++
			if body[i] == '"' {
				i++ // the second of ""
			}
		}
		return buf[:n], true
	}
	esc := byte('\\')
	if rest := q[end:]; len(rest) > 0 {
		// UESCAPE 'c': the escape is the one character of the string.
		sl := lexer{s: rest}
		sl.next() // UESCAPE
		e := sl.next()
		lit := sl.text(e)
		if len(lit) == 4 && lit[0]|0x20 == 'e' && lit[2] != '\\' {
			lit = lit[1:] // E'!' is '!'
		}
		if len(lit) != 3 || lit[0] != '\'' || !validEscape(lit[1]) {
			return nil, false
		}
		esc = lit[1]
	}
	return decodeUnicode(body, esc, buf)
}

// validEscape is PostgreSQL's check on a UESCAPE character.
func validEscape(c byte) bool {
	return !isHex(c) && c != '+' && c != '\'' && c != '"' && !isSpace(c) && c < 0x80
}

func isHex(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f' }

// decodeUnicode decodes the body of a U&"…" identifier into buf:
// esc XXXX and esc +XXXXXX are code points (UTF-16 surrogate pairs
// combine), esc esc is esc, and "" is ".
func decodeUnicode(body string, esc byte, buf *[maxWord]byte) ([]byte, bool) {
	n := 0
	var high rune // a pending UTF-16 high surrogate
	for i := 0; i < len(body); {
		c := body[i]
		var r rune
		switch {
		case c == esc && i+1 < len(body) && body[i+1] == esc:
			r, i = rune(esc), i+2
		case c == esc:
			digits := 4
			i++
			if i < len(body) && body[i] == '+' {
				digits = 6
				i++
			}
			if i+digits > len(body) {
				return nil, false
			}
			for end := i + digits; i < end; i++ {
				if !isHex(body[i]) {
					return nil, false
				}
				r = r<<4 | rune(hexVal(body[i]))
			}
		case c == '"':
			r, i = '"', i+2 // the first of ""
		case c >= 0x80:
			// Already UTF-8: copied as is.
			if high != 0 || n == maxWord {
				return nil, false
			}
			buf[n] = c
			n, i = n+1, i+1
			continue
		default:
			r, i = rune(c), i+1
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			if high != 0 {
				return nil, false
			}
			high = r
			continue
		case r >= 0xDC00 && r <= 0xDFFF:
			if high == 0 {
				return nil, false
			}
			r = (high-0xD800)<<10 | (r - 0xDC00) + 0x10000
			high = 0
		case high != 0:
			return nil, false
		}
		if r == 0 || r > utf8.MaxRune || n+utf8.RuneLen(r) > maxWord {
			return nil, false
		}
		n += utf8.EncodeRune(buf[n:], r)
	}
	if high != 0 {
		return nil, false
	}
	return buf[:n], true
}

func hexVal(c byte) byte {
	if isDigit(c) {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

// nameFlags looks a function name up. A quoted name is case-sensitive and
// is never a keyword: "lower"(x) is lower(x), "select"(x) is a user
// function; U&"…" names are decoded first.
func (lx *lexer) nameFlags(name token) wordFlags {
	if name.kind == tWord {
		return lx.wordInfo(name)
	}
	var buf [maxWord]byte
	b, ok := lx.identBytes(name, &buf)
	if !ok {
		return 0
	}
	return words[string(b)] &^ wKw
}

// identIs reports whether the identifier t names name (lower case).
func (lx *lexer) identIs(t token, name string) bool {
	var buf [maxWord]byte
	b, ok := lx.identBytes(t, &buf)
	return ok && string(b) == name
}

// isTempSchema reports whether t names the session's temporary schema:
// pg_temp, or its real name pg_temp_N.
func (lx *lexer) isTempSchema(t token) bool {
	var buf [maxWord]byte
	b, ok := lx.identBytes(t, &buf)
	if !ok || len(b) < 7 || string(b[:7]) != "pg_temp" {
		return false
	}
	if len(b) == 7 {
		return true
	}
	if b[7] != '_' || len(b) == 8 {
		return false
	}
	for _, c := range b[8:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}
