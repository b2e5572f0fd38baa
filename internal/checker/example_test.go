package checker_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
)

// Run the checker on a replica-region node's database for ten seconds and
// verify the outcome against the primary.
func ExampleRun() {
	ctx := context.Background()
	node, err := flypg.Start(ctx, flypg.Config{ /* a replica-region node */ })
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	db := node.OpenDB()
	db.SetMaxOpenConns(32)
	primary, err := sql.Open("pgx", os.Getenv("DATABASE_URL")) // plain pgx on the primary
	if err != nil {
		log.Fatal(err)
	}
	rep, err := checker.Run(ctx, checker.Config{
		DBs:      []*checker.Target{checker.NewTarget("lax", node.Region(), db, node)},
		Primary:  primary,
		Clients:  32,
		Duration: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err) // the run could not be set up
	}
	fmt.Println(rep.Summary())
	if err := rep.Err(); err != nil {
		log.Fatal(err) // violations, each with its client's history
	}
}

// Strike while the checker runs: wait for the load to be flowing, cause a
// fault, wait for writes to flow again, then verify.
func ExampleStart() {
	ctx := context.Background()
	var cfg checker.Config // DBs and Primary as in the Run example
	l, err := checker.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := l.WaitOK(ctx, 100); err != nil {
		log.Fatal(err)
	}
	faultAt := l.Now()
	// … kill a node, cut the WAN, promote a replica …
	if err := l.WaitOK(ctx, 100); err != nil {
		log.Fatal(err)
	}
	l.Stop()
	rep, err := l.Finish(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	if at, ok := rep.FirstOK(faultAt, nil); ok {
		fmt.Println("first acknowledged write after the fault:", at-faultAt)
	}
}

// The soak `flypg-lab soak` runs: 1,000 clients for 60 s, then the same
// load sent direct, as a markdown report.
func ExampleSoak() {
	rep, err := checker.Soak(context.Background(), checker.SoakConfig{})
	if err != nil {
		log.Fatal(err)
	}
	_ = rep.WriteMarkdown(os.Stdout)
	if err := rep.Err(); err != nil {
		log.Fatal(err)
	}
}
