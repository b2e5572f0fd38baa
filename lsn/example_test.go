package lsn_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/flypg/flypg/lsn"
)

func ExampleParse() {
	l, err := lsn.Parse("16/b374d848")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l, uint64(l), l > lsn.LSN(0x16_00000000))
	_, err = lsn.Parse("16B374D848")
	fmt.Println(errors.Is(err, lsn.ErrSyntax))
	// Output:
	// 16/B374D848 97500059720 true
	// true
}

// A node in a replica region waits, after a forwarded write, for its local
// replica to replay the commit before it reads.
func ExampleTracker_Wait() {
	tr, err := lsn.NewTracker(lsn.Config{DSN: os.Getenv("DATABASE_URL")})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	// The primary returned pg_current_wal_insert_lsn() read right after COMMIT.
	commitLSN, err := lsn.Parse("16/B374D848")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var we *lsn.WaitError
	switch err := tr.Wait(ctx, commitLSN); {
	case errors.As(err, &we):
		log.Printf("write committed but not yet visible here: replica at %s, needs %s", we.Replayed, we.Target)
	case err != nil:
		log.Fatal(err)
	}
}

// After an error that suggests the local database changed role (SQLSTATE
// 25006 on a write thought local, a lost connection), ask the database
// rather than the cached answer.
func ExampleTracker_Refresh() {
	tr, err := lsn.NewTracker(lsn.Config{DSN: os.Getenv("DATABASE_URL")})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	standby, err := tr.Refresh(ctx)
	if err != nil {
		log.Printf("local database unreachable: %v", err)
		return
	}
	if !standby {
		log.Print("the local database is a primary now: run writes locally")
	}
}

// The WAL-arrival signal needs REPLICATION on the standby; where the role
// may not have it, the tracker polls by itself. Turn the signal off to save
// the replication connection (and a walsender slot) altogether.
func ExampleConfig() {
	tr, err := lsn.NewTracker(lsn.Config{
		DSN:              "postgres://app@top1.nearest.of.myapp-db.internal:5433/app",
		DisableWALSignal: true,
		MaxPollInterval:  10 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	fmt.Printf("mode %q until the first Wait connects\n", tr.Stats().Mode)
	// Output: mode "" until the first Wait connects
}
