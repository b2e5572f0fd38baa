package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
)

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting a PostgreSQL primary and a streaming replica...")
	start := time.Now()
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		return err
	}
	defer c.Stop()
	fmt.Fprintf(os.Stderr, "cluster up in %v (primary :%d, replica :%d)\n",
		time.Since(start).Round(time.Millisecond), c.Primary.Port(), c.Replicas[0].Port())

	db, err := sql.Open(flypg.DriverName, c.Primary.DSN())
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL)"); err != nil {
		return err
	}
	var id int
	t0 := time.Now()
	if err := db.QueryRowContext(ctx, "INSERT INTO todos (title) VALUES ($1) RETURNING id", "try flypg").Scan(&id); err != nil {
		return err
	}
	fmt.Printf("write through flypg:  INSERT todo #%d in %v\n", id, time.Since(t0).Round(time.Microsecond))
	var title string
	if err := db.QueryRowContext(ctx, "SELECT title FROM todos WHERE id = $1", id).Scan(&title); err != nil {
		return err
	}
	fmt.Printf("read through flypg:   todo #%d = %q\n", id, title)
	return nil
}
