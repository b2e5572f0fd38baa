package pgcluster_test

import (
	"context"
	"fmt"
	"log"

	"github.com/flypg/flypg/internal/pgcluster"
)

// A primary and one streaming hot standby; a write on the primary is
// visible on the standby after Sync.
func ExampleStart() {
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		log.Fatal(err) // ErrNoBinaries says how to install PostgreSQL
	}
	defer c.Stop()

	if err := c.Primary.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"); err != nil {
		log.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	n, err := c.Replicas[0].QueryString(ctx, "SELECT count(*)::text FROM t")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rows on the replica:", n, "version >= 15:", c.Version().Num() >= 150000)
	// Output: rows on the replica: 1 version >= 15: true
}

// A third region joins a running cluster with a standby of its own that
// applies WAL a second late.
func ExampleCluster_AddReplica() {
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		ReplicaSettings: map[string]string{"recovery_min_apply_delay": "'1s'"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Stop()

	fra, err := c.AddReplica(ctx, "fra")
	if err != nil {
		log.Fatal(err)
	}
	delay, err := fra.QueryString(ctx, "SHOW recovery_min_apply_delay")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fra.Name, len(c.Replicas), delay)
	// Output: fra 2 1s
}
