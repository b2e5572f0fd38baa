package router

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{
		Read: "Read", Session: "Session", Unsure: "Unsure", Write: "Write",
		TxControl: "TxControl", Listen: "Listen", 0: "Class(0)", 200: "Class(200)",
	} {
		assert.Equal(t, want, c.String())
	}
}

func TestResult(t *testing.T) {
	for _, tc := range []struct {
		sql        string
		want       Result
		has, hasnt []Class
	}{
		{sql: "", want: Result{Class: Read}, hasnt: []Class{Read}},
		{sql: " ;; -- x", want: Result{Class: Read}},
		{sql: "SELECT 1", want: Result{Class: Read, Statements: 1}, has: []Class{Read}},
		{sql: "SELECT 1; SELECT 2;", want: Result{Class: Read, Statements: 2}},
		{sql: "SET x = 1; SELECT 1", want: Result{Class: Session, Statements: 2}, has: []Class{Read, Session}},
		{sql: "SET x = 1; INSERT INTO t VALUES (1)", want: Result{Class: Write, Statements: 2}, has: []Class{Session, Write}, hasnt: []Class{Read}},
		{sql: "EXPLAIN ANALYZE SELECT 1", want: Result{Class: Read, Statements: 1, ExplainAnalyze: true}},
		{sql: "EXPLAIN (ANALYZE) DELETE FROM t", want: Result{Class: Write, Statements: 1, ExplainAnalyze: true}},
		{sql: "EXPLAIN DELETE FROM t", want: Result{Class: Read, Statements: 1}},
		{sql: "BEGIN; INSERT INTO t VALUES (1); COMMIT", want: Result{Class: Write, Statements: 3}, has: []Class{TxControl, Write}},
		{sql: "BEGIN; COMMIT", want: Result{Class: Read, Statements: 2}, has: []Class{TxControl}, hasnt: []Class{Read}},
		{sql: "BEGIN", want: Result{Class: TxControl, Statements: 1}},
		{sql: "BEGIN; LISTEN x; COMMIT", want: Result{Class: Listen, Statements: 3}, has: []Class{TxControl, Listen}},
	} {
		got := Analyze(tc.sql)
		assert.Equalf(t, tc.want.Class.String(), got.Class.String(), "%q", tc.sql)
		assert.Equalf(t, tc.want.Statements, got.Statements, "%q statements", tc.sql)
		assert.Equalf(t, tc.want.ExplainAnalyze, got.ExplainAnalyze, "%q explain analyze", tc.sql)
		for _, c := range tc.has {
			assert.Truef(t, got.Has(c), "%q has %v", tc.sql, c)
		}
		for _, c := range tc.hasnt {
			assert.Falsef(t, got.Has(c), "%q has no %v", tc.sql, c)
		}
	}
	assert.False(t, Result{}.Has(0))
	assert.False(t, Result{seen: 0xff}.Has(200))
}

// Edge cases that are about robustness rather than SQL, so not in the
// corpus the standby oracle runs.
func TestHostileInput(t *testing.T) {
	deep := strings.Repeat("(", 500) + "SELECT 1" + strings.Repeat(")", 500)
	assert.Equal(t, Read, Classify(deep), "nesting deeper than the level stack")
	deepWrite := "WITH x AS (" + strings.Repeat("(", 100) + "SELECT 1" + strings.Repeat(")", 100) + "), d AS (DELETE FROM t RETURNING 1) SELECT 1"
	assert.Equal(t, Write, Classify(deepWrite))
	assert.Equal(t, Unsure, Classify("SELECT "+strings.Repeat("(", 40)+"f(1)"+strings.Repeat(")", 40)))

	explains := strings.Repeat("EXPLAIN ANALYZE ", 1000) + "SELECT 1"
	assert.Equal(t, Write, Classify(explains), "EXPLAIN nesting beyond maxNesting is not understood: Write")
	prepares := strings.Repeat("PREPARE p AS ", 1000) + "SELECT 1"
	assert.Equal(t, Write, Classify(prepares))

	for _, s := range []string{"\x00", "\xff\xfe", "SELECT \x00 1", "$", "$$", "$a", "$a$", "E'", "U&", "U&'", `"`, "'", "/*", "--", "(", ")", "((", "))", "EXPLAIN (", "EXPLAIN (ANALYZE", "COPY (", "COPY", "PREPARE", "PREPARE x", "DECLARE", "CREATE OR", "CREATE OR REPLACE FUNCTION f() BEGIN ATOMIC", "START", "WITH", "WITH x AS (", "SELECT * FROM t FOR", "COMMIT AND", strings.Repeat(";", 1000)} {
		assert.NotPanicsf(t, func() { Analyze(s) }, "%q", s)
		c := Classify(s)
		assert.Truef(t, c >= Read && c <= Listen, "%q: %v", s, c)
	}
}

func TestUnbalancedParentheses(t *testing.T) {
	assert.Equal(t, Read, Classify("SELECT 1)) FROM t"))
	assert.Equal(t, Write, Classify("SELECT 1)); DELETE FROM t"))
	assert.Equal(t, Write, Classify("SELECT (1; DELETE FROM t"), "a ; inside parentheses still ends the statement")
}

// The lexer path allocates nothing for typical ORM statements: the driver
// calls it on every statement.
func TestAnalyzeDoesNotAllocate(t *testing.T) {
	for _, q := range benchQueries {
		allocs := testing.AllocsPerRun(100, func() { Analyze(q.sql) })
		assert.Zerof(t, allocs, "%s: %q", q.name, q.sql)
	}
	// And the whole corpus, which exercises every branch.
	for _, r := range loadCorpus(t) {
		allocs := testing.AllocsPerRun(5, func() { Analyze(r.SQL) })
		require.Zerof(t, allocs, "%s", r)
	}
}

func TestStatementsInsideCreate(t *testing.T) {
	assert.Equal(t, 1, Analyze("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)").Statements)
	r := Analyze("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SELECT 2")
	assert.Equal(t, 2, r.Statements)
	assert.Equal(t, Write, r.Class)
	assert.False(t, r.Has(TxControl), "END of the body is not a COMMIT")
}
