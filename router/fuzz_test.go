package router

import (
	"strings"
	"testing"
)

// FuzzClassify checks that any text classifies without panicking, to a
// valid class, the same way twice and through the cache, with a Bound
// exactly when it is SessionBound; and that the classification depends on
// nothing but the lexer's tokens: the same tokens re-joined by spaces or by
// empty comments, with their words in upper case, or followed by an empty
// statement, classify the same, and text without a backslash classifies
// the same whatever standard_conforming_strings says.
func FuzzClassify(f *testing.F) {
	for _, r := range loadCorpus(f) {
		f.Add(r.SQL, r.Opts.NonStandardStrings)
	}
	c := NewClassifier(256)
	f.Fuzz(func(t *testing.T, q string, nonStd bool) {
		o := Options{NonStandardStrings: nonStd}
		r1 := AnalyzeOpts(q, o)
		if r2 := AnalyzeOpts(q, o); r1 != r2 {
			t.Fatalf("not deterministic: %+v then %+v", r1, r2)
		}
		if r1.Class < Read || r1.Class > SessionBound {
			t.Fatalf("invalid class %v", r1.Class)
		}
		if r1.Statements < 0 || r1.Statements == 0 && r1.Class != Read {
			t.Fatalf("%d statements, class %v", r1.Statements, r1.Class)
		}
		if !r1.Has(r1.Class) && r1.Statements > 0 && !r1.Has(TxControl) {
			t.Fatalf("class %v not among the statements' classes (%08b)", r1.Class, r1.seen)
		}
		if (r1.Bound != NotBound) != (r1.Class == SessionBound) || r1.Has(SessionBound) != (r1.Class == SessionBound) {
			t.Fatalf("class %v with bound %v (%08b)", r1.Class, r1.Bound, r1.seen)
		}
		if r1.Bound > BoundListen {
			t.Fatalf("invalid bound %v", r1.Bound)
		}
		if got := c.AnalyzeOpts(q, o); got != r1 {
			t.Fatalf("cached %+v, uncached %+v", got, r1)
		}
		for _, v := range []struct {
			name string
			q    string
		}{
			{"tokens joined by spaces", rejoin(q, o, " ", false)},
			{"tokens joined by comments", rejoin(q, o, "/**/", false)},
			{"words in upper case", rejoin(q, o, " ", true)},
			{"an empty statement after it", q + "\n;"},
		} {
			if got := AnalyzeOpts(v.q, o); got != r1 {
				t.Fatalf("%s: %q is %+v, but %q is %+v", v.name, q, r1, v.q, got)
			}
		}
		if !strings.Contains(q, `\`) {
			if got := AnalyzeOpts(q, Options{NonStandardStrings: !nonStd}); got != r1 {
				t.Fatalf("without a backslash, standard_conforming_strings changed %+v to %+v", r1, got)
			}
		}
	})
}

// rejoin lexes q and writes its tokens back separated by sep, with the
// ASCII letters of its words in upper case if upper is set.
func rejoin(q string, o Options, sep string, upper bool) string {
	lx := lexer{s: q, nonStd: o.NonStandardStrings}
	var b strings.Builder
	for t := lx.next(); t.kind != tEOF; t = lx.next() {
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		text := lx.text(t)
		if upper && t.kind == tWord {
			text = strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' {
					return r - 'a' + 'A'
				}
				return r
			}, text)
		}
		b.WriteString(text)
	}
	return b.String()
}
