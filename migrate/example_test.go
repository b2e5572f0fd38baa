package migrate_test

import (
	"context"
	"database/sql"
	"log"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/flypg/flypg/migrate"
)

// Run the migrations at start-up, on the primary, with the plain pgx driver
// (not flypg's): on a database an older flypg migrated, this removes the
// snapshot-holding wait function. Running it on every start is fine: Up is
// idempotent and serialised by an advisory lock.
func ExampleUp() {
	db, err := sql.Open("pgx", os.Getenv("PRIMARY_DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := migrate.Up(context.Background(), db); err != nil {
		log.Fatal(err)
	}
}
