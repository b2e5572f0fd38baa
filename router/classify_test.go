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
		TxControl: "TxControl", SessionBound: "SessionBound", 0: "Class(0)", 200: "Class(200)",
	} {
		assert.Equal(t, want, c.String())
	}
	assert.Equal(t, SessionBound, Listen, "the deprecated name refuses what LISTEN did")
	assert.Less(t, TxControl, SessionBound, "SessionBound is the greatest class")
}

func TestBound(t *testing.T) {
	for b, want := range map[Bound]string{
		NotBound: "none", BoundAdvisoryLock: "advisory lock", BoundSequenceState: "sequence state",
		BoundTempObject: "temporary object", BoundListen: "listen", 9: "Bound(9)",
	} {
		assert.Equal(t, want, b.String())
	}
	assert.Empty(t, NotBound.Alternative())
	assert.Empty(t, Bound(9).Alternative())
	for b, want := range map[Bound]string{
		BoundAdvisoryLock:  "pg_advisory_xact_lock",
		BoundSequenceState: "RETURNING",
		BoundTempObject:    "BeginTx",
		BoundListen:        "primary",
	} {
		assert.Containsf(t, b.Alternative(), want, "%v", b)
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
		{sql: "BEGIN; LISTEN x; COMMIT", want: Result{Class: SessionBound, Bound: BoundListen, Statements: 3}, has: []Class{TxControl, SessionBound}},
		{sql: "UNLISTEN *", want: Result{Class: Session, Statements: 1}, has: []Class{Session}},
		// set_config in a read: Session; in a write: Has(Session).
		{sql: "SELECT set_config('app.tenant','A',false)", want: Result{Class: Session, Statements: 1}, has: []Class{Session}, hasnt: []Class{Read}},
		{sql: "SELECT set_config('a', 'b', false), nextval('s')", want: Result{Class: Write, Statements: 1}, has: []Class{Write, Session}},
		{sql: "INSERT INTO t VALUES (set_config('a', 'b', false))", want: Result{Class: Write, Statements: 1}, has: []Class{Write, Session}},
		{sql: "UPDATE t SET x = pg_catalog.set_config('a', 'b', false)", want: Result{Class: Write, Statements: 1}, has: []Class{Write, Session}},
		{sql: "CREATE TABLE t AS SELECT set_config('a', 'b', false)", want: Result{Class: Write, Statements: 1}, has: []Class{Write, Session}},
		{sql: "DO $$ BEGIN SET search_path = x; END $$", want: Result{Class: Write, Statements: 1}, has: []Class{Write, Session}},
		{sql: "DO $$ BEGIN PERFORM set_config('a', 'b', false); END $$", want: Result{Class: Write, Statements: 1}, has: []Class{Write, Session}},
		{sql: "DO $$ BEGIN UPDATE t SET x = 1; END $$", want: Result{Class: Write, Statements: 1}, hasnt: []Class{Session}},
		{sql: "EXPLAIN SELECT set_config('a', 'b', false)", want: Result{Class: Read, Statements: 1}, hasnt: []Class{Session}},
		{sql: "SELECT set_config('a', 'b', false), add_one(1)", want: Result{Class: Unsure, Statements: 1}, has: []Class{Unsure, Session}},
		{sql: "INSERT INTO t VALUES (1)", want: Result{Class: Write, Statements: 1}, hasnt: []Class{Session}},
		// SessionBound wins over everything, and Bound is the first one's.
		{sql: "SELECT pg_advisory_lock(1)", want: Result{Class: SessionBound, Bound: BoundAdvisoryLock, Statements: 1}, has: []Class{SessionBound}},
		{sql: "SELECT currval('s'), pg_advisory_lock(1)", want: Result{Class: SessionBound, Bound: BoundSequenceState, Statements: 1}},
		{sql: "SELECT 1; CREATE TEMP TABLE x (); LISTEN y", want: Result{Class: SessionBound, Bound: BoundTempObject, Statements: 3}, has: []Class{Read, SessionBound}},
		{sql: "BEGIN; SELECT pg_advisory_lock(1); COMMIT", want: Result{Class: SessionBound, Bound: BoundAdvisoryLock, Statements: 3}, has: []Class{TxControl}},
		{sql: "BEGIN; SELECT pg_advisory_lock(1)", want: Result{Class: SessionBound, Bound: BoundAdvisoryLock, Statements: 2}, has: []Class{TxControl}},
		{sql: "SET x = 1; SELECT lastval()", want: Result{Class: SessionBound, Bound: BoundSequenceState, Statements: 2}, has: []Class{Session}},
		{sql: "SELECT pg_advisory_xact_lock(1)", want: Result{Class: Write, Statements: 1}},
		{sql: "EXPLAIN SELECT pg_advisory_lock(1)", want: Result{Class: Read, Statements: 1}},
		{sql: "EXPLAIN ANALYZE SELECT pg_advisory_lock(1)", want: Result{Class: SessionBound, Bound: BoundAdvisoryLock, Statements: 1, ExplainAnalyze: true}},
		{sql: "EXPLAIN SELECT 1; SELECT pg_advisory_lock(1)", want: Result{Class: SessionBound, Bound: BoundAdvisoryLock, Statements: 2}},
	} {
		got := Analyze(tc.sql)
		assert.Equalf(t, tc.want.Class.String(), got.Class.String(), "%q", tc.sql)
		assert.Equalf(t, tc.want.Bound.String(), got.Bound.String(), "%q bound", tc.sql)
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

	// Long runs of what the lexer looks ahead over or back at.
	for _, s := range []string{
		"SELECT U&'a'" + strings.Repeat(" UESCAPE U&'a'", 100000),
		"SELECT 'a'" + strings.Repeat("\n'a'", 100000),
		"SELECT 'a'" + strings.Repeat("\n", 100000),
		"SELECT 'a' --" + strings.Repeat("x", 100000),
		"SELECT " + strings.Repeat("/*", 100000),
		"SELECT " + strings.Repeat("$a", 100000),
		"DO $$" + strings.Repeat("'a' \"b\" ", 50000) + "$$",
		strings.Repeat("SELECT 1 INTO LOCAL ", 50000),
	} {
		assert.NotPanicsf(t, func() { Analyze(s) }, "%.40q…", s)
	}
	assert.Equal(t, SessionBound, Classify("DO $$"+strings.Repeat("'a' ", 50000)+"PERFORM pg_advisory_lock(1); $$"))

	explains := strings.Repeat("EXPLAIN ANALYZE ", 1000) + "SELECT 1"
	assert.Equal(t, Write, Classify(explains), "EXPLAIN nesting beyond maxNesting is not understood: Write")
	prepares := strings.Repeat("PREPARE p AS ", 1000) + "SELECT 1"
	assert.Equal(t, Write, Classify(prepares))

	for _, s := range []string{"\x00", "\xff\xfe", "U&\"", "U&\"\\", "U&\"a\" UESCAPE", "U&\"a\" UESCAPE '", "U&\"\\D800\"(", "E'\\", "'a'\n", "'a'\n--", "'a' --", "DO", "DO $", "DO '", "DO $a$", "DO E'\\", "CREATE TEMP", "CREATE TABLE pg_temp", "CREATE TABLE pg_temp.", "SELECT 1 INTO", "SELECT 1 INTO LOCAL", "SELECT 1 INTO pg_temp", "LISTEN", "1e", "1e+", ".", "1.", "SELECT \x00 1", "$", "$$", "$a", "$a$", "E'", "U&", "U&'", `"`, "'", "/*", "--", "(", ")", "((", "))", "EXPLAIN (", "EXPLAIN (ANALYZE", "COPY (", "COPY", "PREPARE", "PREPARE x", "DECLARE", "CREATE OR", "CREATE OR REPLACE FUNCTION f() BEGIN ATOMIC", "START", "WITH", "WITH x AS (", "SELECT * FROM t FOR", "COMMIT AND", strings.Repeat(";", 1000)} {
		assert.NotPanicsf(t, func() { Analyze(s) }, "%q", s)
		c := Classify(s)
		assert.Truef(t, c >= Read && c <= SessionBound, "%q: %v", s, c)
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
		allocs := testing.AllocsPerRun(5, func() { AnalyzeOpts(r.SQL, r.Opts) })
		require.Zerof(t, allocs, "%s", r)
		allocs = testing.AllocsPerRun(5, func() { AnalyzeOpts(r.SQL, Options{NonStandardStrings: !r.Opts.NonStandardStrings}) })
		require.Zerof(t, allocs, "%s, the other standard_conforming_strings", r)
	}
}

func TestStatementsInsideCreate(t *testing.T) {
	assert.Equal(t, 1, Analyze("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)").Statements)
	r := Analyze("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SELECT 2")
	assert.Equal(t, 2, r.Statements)
	assert.Equal(t, Write, r.Class)
	assert.False(t, r.Has(TxControl), "END of the body is not a COMMIT")
}
