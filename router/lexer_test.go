package router

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// tokens renders the lexer's output as kind:text pairs.
func tokens(s string) []string {
	names := map[tokKind]string{
		tWord: "w", tQIdent: "q", tString: "s", tNumber: "n", tParam: "p",
		tLParen: "(", tRParen: ")", tSemi: ";", tComma: ",", tDot: ".", tOp: "o",
	}
	lx := lexer{s: s}
	var out []string
	for t := lx.next(); t.kind != tEOF; t = lx.next() {
		out = append(out, names[t.kind]+":"+lx.text(t))
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
		{"a--b\nc", []string{"w:a", "w:c"}},
		{"a/**/b", []string{"w:a", "w:b"}},
		{"'it''s' x", []string{"s:'it''s'", "w:x"}},
		{`'C:\' x`, []string{`s:'C:\'`, "w:x"}},
		{`E'it\'s' x`, []string{`s:E'it\'s'`, "w:x"}},
		{`e'\\' x`, []string{`s:e'\\'`, "w:x"}},
		{`U&'\0041' x`, []string{`s:U&'\0041'`, "w:x"}},
		{`u&"a" x`, []string{`q:u&"a"`, "w:x"}},
		{`B'01' X'ff' N'n'`, []string{"s:B'01'", "s:X'ff'", "s:N'n'"}},
		{`"a""b" x`, []string{`q:"a""b"`, "w:x"}},
		{"$$a;b$$ x", []string{"s:$$a;b$$", "w:x"}},
		{"$t$ $$ $t$ x", []string{"s:$t$ $$ $t$", "w:x"}},
		{"$t$unterminated $$", []string{"s:$t$unterminated $$"}},
		{"$1 $23", []string{"p:$1", "p:$23"}},
		{"a$b $", []string{"w:a$b", "o:$"}},
		{"1.5e-3 .5 0x1F", []string{"n:1.5e-3", "n:.5", "n:0x1F"}},
		{"a.b(c)", []string{"w:a", ".:.", "w:b", "(:(", "w:c", "):)"}},
		{"x::int;", []string{"w:x", "o::", "o::", "w:int", ";:;"}},
		{"café naïve_ü", []string{"w:café", "w:naïve_ü"}},
		{"E", []string{"w:E"}},
		{"U&", []string{"w:U", "o:&"}},
		{"*--c\n/", []string{"o:*", "o:/"}},
	} {
		assert.Equalf(t, tc.want, tokens(tc.in), "%q", tc.in)
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
