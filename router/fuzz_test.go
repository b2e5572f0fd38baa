package router

import (
	"testing"
)

// FuzzClassify checks that any text classifies without panicking, to a
// valid class, the same way twice, and the same through the cache.
func FuzzClassify(f *testing.F) {
	for _, r := range loadCorpus(f) {
		f.Add(r.SQL)
	}
	c := NewClassifier(256)
	f.Fuzz(func(t *testing.T, q string) {
		r1 := Analyze(q)
		r2 := Analyze(q)
		if r1 != r2 {
			t.Fatalf("not deterministic: %+v then %+v", r1, r2)
		}
		if r1.Class < Read || r1.Class > Listen {
			t.Fatalf("invalid class %v", r1.Class)
		}
		if r1.Statements < 0 || r1.Statements == 0 && r1.Class != Read {
			t.Fatalf("%d statements, class %v", r1.Statements, r1.Class)
		}
		if !r1.Has(r1.Class) && r1.Statements > 0 && !r1.Has(TxControl) {
			t.Fatalf("class %v not among the statements' classes (%08b)", r1.Class, r1.seen)
		}
		if got := c.Analyze(q); got != r1 {
			t.Fatalf("cached %+v, uncached %+v", got, r1)
		}
	})
}
