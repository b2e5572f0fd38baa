package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/flypg/flypg"
)

type demoItem struct{ Titles []string }
type demoIDs struct{ IDs []int64 }

func init() {
	flypg.RegisterProc("demo.insert_many", func(ctx context.Context, db *sql.DB, req demoItem) (demoIDs, error) {
		var out demoIDs
		for _, t := range req.Titles {
			var id int64
			if err := db.QueryRowContext(ctx, "INSERT INTO todos (title) VALUES ($1) RETURNING id", t).Scan(&id); err != nil {
				return out, err
			}
			out.IDs = append(out.IDs, id)
		}
		return out, nil
	})
}

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	rtt := fs.Duration("rtt", 60*time.Millisecond, "round-trip time between the two regions")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: flypg-lab demo [--rtt 60ms]\n\nStarts a primary region (syd) and a replica region (lax) on this machine and narrates what flypg does.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := startLab(ctx, *rtt)
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := l.sydDB.ExecContext(ctx, "CREATE TABLE todos (id bigserial PRIMARY KEY, title text NOT NULL)"); err != nil {
		return err
	}
	if err := l.pg.Sync(ctx); err != nil {
		return err
	}

	fmt.Printf("\nflypg lab: primary in syd, replica in lax, %v round trip between them\n\n", *rtt)

	// 1. The flypg way.
	var id int64
	// Warm both pools, as a running app's would be.
	for _, db := range []*sql.DB{l.laxDB, l.direct, l.replica} {
		if _, _, err := lookup(ctx, db, 0); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := l.laxDB.QueryRowContext(ctx, "INSERT INTO todos (title) VALUES ($1) RETURNING id", "buy milk").Scan(&id); err != nil {
		return err
	}
	write := time.Since(t0)
	seen, read, err := lookup(ctx, l.laxDB, id)
	if err != nil {
		return err
	}

	fmt.Printf("1. write in lax through flypg        %8s  (sent to syd, waited for lax's replica)\n", ms(write))
	fmt.Printf("   read in lax right after            %8s  sees it: %s\n\n", ms(read), yes(seen))

	// 2. NoAwait.
	t0 = time.Now()
	if err := l.laxDB.QueryRowContext(flypg.NoAwait(ctx), "INSERT INTO todos (title) VALUES ($1) RETURNING id", "walk dog").Scan(&id); err != nil {
		return err
	}
	write = time.Since(t0)
	seen, read, err = lookup(ctx, l.laxDB, id)
	if err != nil {
		return err
	}
	fmt.Printf("2. same write with flypg.NoAwait      %8s  (returns once syd committed)\n", ms(write))
	fmt.Printf("   read in lax right after            %8s  sees it: %s  (replication may still be in flight)\n\n", ms(read), yes(seen))

	// 3. Read-after-write, 20 times each way: flypg, and a naive split that
	// writes straight to the primary and reads the replica (what read/write
	// splitting resolvers do).
	const rounds = 20
	stale := map[string]int{}
	var took = map[string]time.Duration{}
	for _, way := range []struct {
		name        string
		write, read *sql.DB
	}{{"flypg", l.laxDB, l.laxDB}, {"naive", l.direct, l.replica}} {
		for i := range rounds {
			t0 := time.Now()
			if err := way.write.QueryRowContext(ctx, "INSERT INTO todos (title) VALUES ($1) RETURNING id", fmt.Sprint(way.name, i)).Scan(&id); err != nil {
				return err
			}
			seen, _, err := lookup(ctx, way.read, id)
			if err != nil {
				return err
			}
			took[way.name] += time.Since(t0)
			if !seen {
				stale[way.name]++
			}
		}
	}
	fmt.Printf("3. write then read, %d times:\n", rounds)
	fmt.Printf("   flypg (write forwarded, read in lax)      %8s each, stale reads: %d/%d\n", ms(took["flypg"]/rounds), stale["flypg"], rounds)
	fmt.Printf("   naive split (pgx to syd, read lax replica) %7s each, stale reads: %d/%d  <- what flypg prevents\n\n", ms(took["naive"]/rounds), stale["naive"], rounds)

	// 4. Ten inserts in one round trip.
	titles := make([]string, 10)
	for i := range titles {
		titles[i] = fmt.Sprintf("batch item %d", i+1)
	}
	t0 = time.Now()
	out, err := flypg.CallPrimary[demoItem, demoIDs](ctx, l.lax, "demo.insert_many", demoItem{Titles: titles})
	if err != nil {
		return err
	}
	write = time.Since(t0)
	var n int
	if err := l.laxDB.QueryRowContext(ctx, "SELECT count(*) FROM todos WHERE id = ANY($1)", out.IDs).Scan(&n); err != nil {
		return err
	}
	fmt.Printf("4. CallPrimary: 10 inserts run in syd %8s  (one round trip), %d/10 visible in lax at once\n\n", ms(write), n)

	st := l.lax.Stats()
	fmt.Printf("lax node: %d statements forwarded, %d run locally, %d awaited, %d not awaited\n",
		st.Forwarded, st.Local, st.Awaits, st.Skipped)
	return nil
}

func lookup(ctx context.Context, db *sql.DB, id int64) (bool, time.Duration, error) {
	t0 := time.Now()
	var n int
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM todos WHERE id = $1", id).Scan(&n)
	return n == 1, time.Since(t0), err
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
