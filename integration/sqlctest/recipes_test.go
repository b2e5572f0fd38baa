package sqlctest_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/integration/sqlctest/authors"
)

// sqlc's generated code takes any DBTX: open the database with flypg and
// hand it over. DATABASE_URL is the primary's URL, the same in every
// region.
func Example() {
	ctx := context.Background()
	db, err := sql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	q := authors.New(db)

	// Forwarded to the primary; the row comes back once the local
	// replica replayed the insert.
	a, err := q.CreateAuthor(ctx, authors.CreateAuthorParams{Name: "Ursula", Tags: []string{"sf"}})
	if err != nil {
		log.Fatal(err)
	}
	// On the local replica, and it sees the row.
	got, err := q.GetAuthor(ctx, a.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Name, got.Tags)
	// Output: Ursula [sf]
}

// createWithBio is the WithTx recipe: sqlc's queries bound to a
// transaction, which flypg runs on the primary (one round trip per
// statement) and whose Commit waits for the local replica.
func createWithBio(ctx context.Context, db *sql.DB, q *authors.Queries, name, bio string) (authors.Author, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return authors.Author{}, err
	}
	defer tx.Rollback() // a no-op after Commit
	qtx := q.WithTx(tx)
	a, err := qtx.CreateAuthor(ctx, authors.CreateAuthorParams{Name: name})
	if err != nil {
		return authors.Author{}, err
	}
	if _, err := qtx.UpdateAuthorBio(ctx, authors.UpdateAuthorBioParams{ID: a.ID, Bio: sql.NullString{String: bio, Valid: true}}); err != nil {
		return authors.Author{}, err
	}
	if a, err = qtx.GetAuthor(ctx, a.ID); err != nil {
		return authors.Author{}, err
	}
	return a, tx.Commit()
}
