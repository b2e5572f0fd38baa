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
		`BEGIN`,
		`LISTEN jobs`,
	} {
		fmt.Printf("%-9v %s\n", router.Classify(q), q)
	}
	// Output:
	// Read      SELECT * FROM "users" WHERE "users"."id" = $1
	// Read      SELECT "delete", updated_at FROM users update -- FOR UPDATE
	// Write     SELECT * FROM users WHERE id = $1 FOR UPDATE
	// Write     WITH d AS (DELETE FROM jobs RETURNING *) SELECT count(*) FROM d
	// Unsure    SELECT my_function($1)
	// Read      EXPLAIN DELETE FROM users
	// Session   SET search_path TO app
	// TxControl BEGIN
	// Listen    LISTEN jobs
}

func ExampleAnalyze() {
	r := router.Analyze("BEGIN; UPDATE accounts SET n = n + 1; COMMIT")
	fmt.Println(r.Class, r.Statements, r.Has(router.TxControl))
	// Output:
	// Write 3 true
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
