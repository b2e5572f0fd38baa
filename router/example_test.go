package router_test

import (
	"fmt"

	"github.com/flypg/flypg/router"
)

func ExampleClassify() {
	for _, q := range []string{
		`SELECT * FROM "users" WHERE "users"."id" = $1`,
		`SELECT "delete", updated_at FROM users update -- FOR UPDATE`,
		`SELECT * FROM users WHERE id = $1 FOR UPDATE`,
		`WITH d AS (DELETE FROM jobs RETURNING *) SELECT count(*) FROM d`,
		`SELECT my_function($1)`,
		`EXPLAIN DELETE FROM users`,
		`SET search_path TO app`,
		`SELECT set_config('app.tenant', 'A', false)`,
		`UNLISTEN *`,
		`SELECT pg_advisory_xact_lock(42)`,
		`BEGIN`,
		`SELECT pg_advisory_lock(42)`,
		`LISTEN jobs`,
	} {
		fmt.Printf("%-12v %s\n", router.Classify(q), q)
	}
	// Output:
	// Read         SELECT * FROM "users" WHERE "users"."id" = $1
	// Read         SELECT "delete", updated_at FROM users update -- FOR UPDATE
	// Write        SELECT * FROM users WHERE id = $1 FOR UPDATE
	// Write        WITH d AS (DELETE FROM jobs RETURNING *) SELECT count(*) FROM d
	// Unsure       SELECT my_function($1)
	// Read         EXPLAIN DELETE FROM users
	// Session      SET search_path TO app
	// Session      SELECT set_config('app.tenant', 'A', false)
	// Session      UNLISTEN *
	// Write        SELECT pg_advisory_xact_lock(42)
	// TxControl    BEGIN
	// SessionBound SELECT pg_advisory_lock(42)
	// SessionBound LISTEN jobs
}

func ExampleAnalyze() {
	r := router.Analyze("BEGIN; UPDATE accounts SET n = n + 1; COMMIT")
	fmt.Println(r.Class, r.Statements, r.Has(router.TxControl))
	// Output:
	// Write 3 true
}

// A driver refuses a SessionBound statement with an error that names what
// the caller can do instead.
func ExampleBound_Alternative() {
	for _, q := range []string{
		"SELECT pg_try_advisory_lock(42)",
		"INSERT INTO orders (user_id) VALUES (currval('users_id_seq'))",
		"CREATE TEMP TABLE scratch (id int)",
		"LISTEN jobs",
	} {
		if r := router.Analyze(q); r.Class == router.SessionBound {
			fmt.Printf("%s cannot follow the caller: %s\n", r.Bound, r.Bound.Alternative())
		}
	}
	// Output:
	// advisory lock cannot follow the caller: take a transaction-scoped lock (pg_advisory_xact_lock, pg_try_advisory_xact_lock) inside db.BeginTx, where every statement runs on one primary connection, or hold the session lock on a connection of your own to the primary
	// sequence state cannot follow the caller: read the generated value with INSERT … RETURNING, or call nextval and currval inside one db.BeginTx
	// temporary object cannot follow the caller: create and use it inside one db.BeginTx (ON COMMIT DROP lets it end with the transaction), or use a connection of your own to the primary
	// listen cannot follow the caller: listen on a connection of your own to the primary: notifications are only delivered there
}

// Under standard_conforming_strings = off a backslash escapes a quote in a
// plain string, so the same text holds a call it does not hold otherwise.
// A driver passes the connection's setting.
func ExampleAnalyzeOpts() {
	q := `SELECT 'a\'', pg_try_advisory_lock(42) --'`
	fmt.Println(router.AnalyzeOpts(q, router.Options{}).Class)
	fmt.Println(router.AnalyzeOpts(q, router.Options{NonStandardStrings: true}).Class)
	// Output:
	// Read
	// SessionBound
}

// A driver owns one Classifier and asks it about every statement: the
// texts an ORM sends repeat, and a cache hit costs one map lookup.
func ExampleClassifier() {
	c := router.NewClassifier(4096)
	for range 3 {
		c.Classify(`SELECT * FROM "users" WHERE "users"."id" = $1`)
	}
	fmt.Println(c.Len())
	// Output:
	// 1
}
