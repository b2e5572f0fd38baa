package sqlxtest_test

import (
	"fmt"
	"log"
	"os"

	"github.com/jmoiron/sqlx"

	"github.com/flypg/flypg"
)

// openSqlx is the recipe for an app that starts its flypg node itself:
// sqlx picks its placeholder style by driver name, and "pgx" gives $1, $2
// (flypg wraps pgx, so everything else sqlx does by name fits too).
func openSqlx(node *flypg.Node) *sqlx.DB {
	return sqlx.NewDb(node.OpenDB(), "pgx")
}

// Opening sqlx on the driver name: tell sqlx once that "flypg" takes
// PostgreSQL's $1 placeholders, or Rebind, In and the Named* methods leave
// ? in the SQL and PostgreSQL answers with a syntax error.
func Example_bindDriver() {
	sqlx.BindDriver(flypg.DriverName, sqlx.DOLLAR)
	db, err := sqlx.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	db.MustExec("CREATE TABLE IF NOT EXISTS places (id bigserial PRIMARY KEY, city text NOT NULL)")
	db.MustExec(db.Rebind("INSERT INTO places (city) VALUES (?)"), "Sydney")
	var n int
	if err := db.Get(&n, db.Rebind("SELECT count(*) FROM places WHERE city = ?"), "Sydney"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n >= 1)
	// Output: true
}
