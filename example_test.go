package flypg_test

import (
	"context"
	"database/sql"
	"errors"
	"log"
	"os"

	"github.com/flypg/flypg"
)

// The whole change for an app: open "flypg" instead of "pgx". With no
// PRIMARY_REGION in the environment this is a pass-through to pgx.
func Example() {
	db, err := sql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	// In a replica region this INSERT runs on the primary, and returns once
	// the local replica has replayed it...
	if _, err := db.ExecContext(ctx, "INSERT INTO todos (title) VALUES ($1)", "ship it"); err != nil {
		log.Fatal(err)
	}
	// ...so this read, on the local replica, sees it.
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM todos").Scan(&n); err != nil {
		log.Fatal(err)
	}
}

// A node configured explicitly, as a long-running app would.
func ExampleStart() {
	cfg, err := flypg.ConfigFromEnv() // FLY_REGION, PRIMARY_REGION, DATABASE_URL, FLYPG_SECRET, …
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	node, err := flypg.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	if err := node.WaitReady(ctx); err != nil {
		log.Printf("no primary-region node yet: %v", err)
	}
	db := node.OpenDB()
	defer db.Close()
}

// Writes whose result the caller does not read back need not wait for
// replication.
func ExampleNoAwait() {
	db, _ := sql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
	ctx := flypg.NoAwait(context.Background())
	_, err := db.ExecContext(ctx, "INSERT INTO audit_log (event) VALUES ($1)", "login")
	if err != nil {
		log.Fatal(err)
	}
}

type importReq struct{ Titles []string }
type importResp struct{ Inserted int }

// Work that makes many statements runs next to the primary in one round trip.
func ExampleCallPrimary() {
	// In every node, at init:
	flypg.RegisterProc("todos.import", func(ctx context.Context, db *sql.DB, req importReq) (importResp, error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return importResp{}, err
		}
		defer tx.Rollback()
		for _, t := range req.Titles {
			if _, err := tx.ExecContext(ctx, "INSERT INTO todos (title) VALUES ($1)", t); err != nil {
				return importResp{}, err
			}
		}
		return importResp{Inserted: len(req.Titles)}, tx.Commit()
	})

	var node *flypg.Node // from flypg.Start
	resp, err := flypg.CallPrimary[importReq, importResp](context.Background(), node, "todos.import",
		importReq{Titles: []string{"a", "b", "c"}})
	var ae *flypg.AwaitError
	switch {
	case errors.As(err, &ae):
		log.Printf("imported, but not yet visible here (LSN %s)", ae.LSN)
	case err != nil:
		log.Fatal(err)
	}
	log.Printf("imported %d", resp.Inserted)
}
