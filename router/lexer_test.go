package router

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

var kindNames = map[tokKind]string{
	tWord: "w", tQIdent: "q", tString: "s", tNumber: "n", tParam: "p",
	tLParen: "(", tRParen: ")", tSemi: ";", tComma: ",", tDot: ".", tOp: "o",
}

// tokens renders the lexer's output as kind:text pairs.
func tokens(s string, o Options) []string {
	lx := lexer{s: s, nonStd: o.NonStandardStrings}
	var out []string
	for t := lx.next(); t.kind != tEOF; t = lx.next() {
		out = append(out, kindNames[t.kind]+":"+lx.text(t))
	}
	return out
}

func TestLexer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  -- all comment", nil},
		{"/* a /* nested */ still */x", []string{"w:x"}},
		{"/* unterminated", nil},
		{"/*/ x */y", []string{"w:y"}},
		{"/**/x/***/y", []string{"w:x", "w:y"}},
		{"a--b\nc", []string{"w:a", "w:c"}},
		{"a/**/b", []string{"w:a", "w:b"}},
		{"'it''s' x", []string{"s:'it''s'", "w:x"}},
		{`'C:\' x`, []string{`s:'C:\'`, "w:x"}},
		{`E'it\'s' x`, []string{`s:E'it\'s'`, "w:x"}},
		{`e'\\' x`, []string{`s:e'\\'`, "w:x"}},
		{`E'\`, []string{`s:E'\`}},
		{`U&'\0041' x`, []string{`s:U&'\0041'`, "w:x"}},
		{`U&'\' x`, []string{`s:U&'\'`, "w:x"}},
		{`u&"a" x`, []string{`q:u&"a"`, "w:x"}},
		{`B'01' X'ff' N'n'`, []string{"s:B'01'", "s:X'ff'", "s:N'n'"}},
		// B'…' and X'…' have no doubled quote: B'0''1' is B'0' and '1'.
		{`B'0''1' X'f''f'`, []string{"s:B'0'", "s:'1'", "s:X'f'", "s:'f'"}},
		{`"a""b" x`, []string{`q:"a""b"`, "w:x"}},
		{"$$a;b$$ x", []string{"s:$$a;b$$", "w:x"}},
		{"$t$ $$ $t$ x", []string{"s:$t$ $$ $t$", "w:x"}},
		{"$t$unterminated $$", []string{"s:$t$unterminated $$"}},
		{"$a$ $ab$ $a$ x", []string{"s:$a$ $ab$ $a$", "w:x"}},
		{"$1 $23", []string{"p:$1", "p:$23"}},
		{"$1a", []string{"p:$1", "w:a"}},
		{"a$b $", []string{"w:a$b", "o:$"}},
		// $$ after an identifier character is part of the identifier.
		{"a$$ x $$", []string{"w:a$$", "w:x", "s:$$"}},
		{"1.5e-3 .5 1. 1e5 1E+5", []string{"n:1.5e-3", "n:.5", "n:1.", "n:1e5", "n:1E+5"}},
		// PostgreSQL 14: a number ends where its digits do (15 and later reject
		// the junk).
		{"0x1F 1_000 1abc 1..2", []string{"n:0", "w:x1F", "n:1", "w:_000", "n:1", "w:abc", "n:1", ".:.", "n:.2"}},
		{"1e 1e+ 1e'x'", []string{"n:1", "w:e", "n:1", "w:e", "o:+", "n:1", "s:e'x'"}},
		{"1FROM t", []string{"n:1", "w:FROM", "w:t"}},
		{"a.b(c)", []string{"w:a", ".:.", "w:b", "(:(", "w:c", "):)"}},
		{"x::int;", []string{"w:x", "o::", "o::", "w:int", ";:;"}},
		{"café naïve_ü", []string{"w:café", "w:naïve_ü"}},
		{"E", []string{"w:E"}},
		{"xE'a'", []string{"w:xE", "s:'a'"}},
		{"U&", []string{"w:U", "o:&"}},
		{"*--c\n/", []string{"o:*", "o:/"}},
		{"a\vb", []string{"w:a", "w:b"}},
	} {
		assert.Equalf(t, tc.want, tokens(tc.in, Options{}), "%q", tc.in)
	}
}

// String continuation: a closing quote, whitespace holding a newline (and
// -- comments), and another quote continue the same string, in the same
// mode.
func TestLexerContinuation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"'a'\n'b' x", []string{"s:'a'\n'b'", "w:x"}},
		{"'a' \t\n \n'b'", []string{"s:'a' \t\n \n'b'"}},
		{"'a'\r\n'b'", []string{"s:'a'\r\n'b'"}},
		{"'a' -- c\n'b'", []string{"s:'a' -- c\n'b'"}},
		{"'a'\n-- c\n'b'", []string{"s:'a'\n-- c\n'b'"}},
		{"'a'\n'b'\n'c'", []string{"s:'a'\n'b'\n'c'"}},
		{"'a' 'b'", []string{"s:'a'", "s:'b'"}},          // no newline
		{"'a' /* c */\n'b'", []string{"s:'a'", "s:'b'"}}, // a block comment breaks it
		{"'a'\n/* c */'b'", []string{"s:'a'", "s:'b'"}},  // so does one after the newline
		{"'a'\n-- unterminated", []string{"s:'a'"}},      // a comment, not a string
		{"'a'\n x", []string{"s:'a'", "w:x"}},            // no second quote
		{"E'a'\n'\\'', f(1) --'", []string{"s:E'a'\n'\\''", ",:,", "w:f", "(:(", "n:1", "):)"}},
		{"'a'\n'\\'', f(1) --'", []string{"s:'a'\n'\\'', f(1) --'"}}, // plain: \ is a character
		{"B'0'\n'1' X'f'\n'0'", []string{"s:B'0'\n'1'", "s:X'f'\n'0'"}},
		{"U&'a'\n'b'", []string{"s:U&'a'\n'b'"}},
		{"N'a'\n'b'", []string{"s:N'a'\n'b'"}},
		{`"a"` + "\n" + `"b"`, []string{`q:"a"`, `q:"b"`}}, // identifiers never continue
		{"$$a$$\n'b'", []string{"s:$$a$$", "s:'b'"}},       // nor do dollar quotes
	} {
		assert.Equalf(t, tc.want, tokens(tc.in, Options{}), "%q", tc.in)
	}
}

// standard_conforming_strings = off: plain and N strings take backslash
// escapes; B, X, U& and dollar quotes do not change.
func TestLexerNonStandardStrings(t *testing.T) {
	nonStd := Options{NonStandardStrings: true}
	for _, tc := range []struct {
		in        string
		std, nstd []string
	}{
		{`'a\'' x`, []string{`s:'a\'' x`}, []string{`s:'a\''`, "w:x"}},
		{`'a\'', f --'`, []string{`s:'a\'', f --'`}, []string{`s:'a\''`, ",:,", "w:f"}},
		{`N'\'', f --'`, []string{`s:N'\'', f --'`}, []string{`s:N'\''`, ",:,", "w:f"}},
		{`'\\' x`, []string{`s:'\\'`, "w:x"}, []string{`s:'\\'`, "w:x"}},
		{`B'\' X'\' $$\$$`, []string{`s:B'\'`, `s:X'\'`, `s:$$\$$`}, []string{`s:B'\'`, `s:X'\'`, `s:$$\$$`}},
		{`U&'\' x`, []string{`s:U&'\'`, "w:x"}, []string{`s:U&'\'`, "w:x"}},
	} {
		assert.Equalf(t, tc.std, tokens(tc.in, Options{}), "%q", tc.in)
		assert.Equalf(t, tc.nstd, tokens(tc.in, nonStd), "%q (nonstandard)", tc.in)
	}
}

// U&'…' and U&"…" take a following UESCAPE clause into their token, as
// PostgreSQL's parser joins them.
func TestLexerUescape(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`U&'d!0061' UESCAPE '!' x`, []string{`s:U&'d!0061' UESCAPE '!'`, "w:x"}},
		{`U&"d!0061" uescape/**/'!'(1)`, []string{`q:U&"d!0061" uescape/**/'!'`, "(:(", "n:1", "):)"}},
		{`U&"a" UESCAPEX '!'`, []string{`q:U&"a"`, "w:UESCAPEX", "s:'!'"}},
		{`U&"a" UESCAPE x`, []string{`q:U&"a"`, "w:UESCAPE", "w:x"}},
		{`U&"a" UESCAPE`, []string{`q:U&"a"`, "w:UESCAPE"}},
		{`"a" UESCAPE '!'`, []string{`q:"a"`, "w:UESCAPE", "s:'!'"}},
	} {
		assert.Equalf(t, tc.want, tokens(tc.in, Options{}), "%q", tc.in)
	}
}

func TestIdentBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" for not an identifier PostgreSQL accepts
	}{
		{`Pg_Advisory_Lock`, "pg_advisory_lock"},
		{`"pg_advisory_lock"`, "pg_advisory_lock"},
		{`"PG_ADVISORY_LOCK"`, "PG_ADVISORY_LOCK"},
		{`"a""b"`, `a"b`},
		{`U&"pg_advisory_lock"`, "pg_advisory_lock"},
		{`U&"pg\005fadvisory\005Flock"`, "pg_advisory_lock"},
		{`U&"pg\+00005Fadvisory_lock"`, "pg_advisory_lock"},
		{`U&"pg!005fadvisory!005flock" UESCAPE '!'`, "pg_advisory_lock"},
		{`u&"a!!b" uescape '!'`, "a!b"},
		{`U&"a!0062" UESCAPE E'!'`, "ab"},
		{`U&"a\\b"`, `a\b`},
		{`U&"a""b"`, `a"b`},
		{`U&"\D83D\DE00"`, "😀"},
		{`U&"é"`, "é"},
		{`U&"\D83D"`, ""},          // unpaired surrogate
		{`U&"\DE00"`, ""},          // unpaired surrogate
		{`U&"\D83Dx"`, ""},         // unpaired surrogate
		{`U&"\00"`, ""},            // too few digits
		{`U&"\zzzz"`, ""},          // not hex
		{`U&"\0000"`, ""},          // NUL
		{`U&"\+110000"`, ""},       // beyond Unicode
		{`U&"a" UESCAPE 'ab'`, ""}, // not one character
		{`U&"a" UESCAPE '+'`, ""},  // not allowed as escape
		{`U&"unterminated`, ""},
		{`"unterminated`, ""},
		{`'string'`, ""},
		{`"` + string(make([]byte, maxWord+1)) + `"`, ""},
	} {
		lx := lexer{s: tc.in}
		var buf [maxWord]byte
		b, ok := lx.identBytes(lx.next(), &buf)
		assert.Equalf(t, tc.want != "", ok, "%q ok", tc.in)
		assert.Equalf(t, tc.want, string(b), "%q", tc.in)
	}
}

func TestUnread(t *testing.T) {
	lx := lexer{s: "a b"}
	a := lx.next()
	lx.unread(a)
	assert.Equal(t, a, lx.next())
	assert.Equal(t, "b", lx.text(lx.next()))
	assert.Equal(t, tEOF, lx.next().kind)
	assert.Equal(t, tEOF, lx.next().kind, "EOF is sticky")
}
