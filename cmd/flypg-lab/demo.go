package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// todo is the example app's JSON row.
type todo struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

// nodeStats is the part of the app's GET /stats (flypg.Stats) the demo shows.
type nodeStats struct {
	Forwarded, Local, Awaits, Skipped int64
}

func runDemo(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	rtt := fs.Duration("rtt", 60*time.Millisecond, "round-trip time of the simulated WAN between the two regions")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: flypg-lab demo [--rtt 60ms]

Starts a PostgreSQL primary in region syd and its hot standby in lax (a
simulated WAN between them), runs the example app (examples/todo) in each
region as a separate process, and narrates what flypg does. Everything is
torn down at exit. Run it from the flypg repository: it builds the app.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	l, err := startLabWithApps(ctx, *rtt, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	defer httpClient.CloseIdleConnections()
	syd, lax := l.apps[0], l.apps[1]
	return demo(ctx, stdout, l, syd, lax)
}

func demo(ctx context.Context, out io.Writer, l *lab, syd, lax *app) error {
	p := func(format string, args ...any) { fmt.Fprintf(out, format, args...) }
	p("\nflypg lab: primary database in syd, its replica in lax, %v round trip between them.\n", l.rtt)
	p("The example todo app runs in each region (syd pid %d %s, lax pid %d %s).\n\n", syd.pid, syd.url, lax.pid, lax.url)

	// Warm up as a running service would be: HTTP keep-alive, the app's
	// pools, syd's primary connections, the baselines' pools.
	if _, err := create(ctx, lax, "warm-up", false); err != nil {
		return err
	}
	for _, db := range []*sql.DB{l.direct, l.replica} {
		if _, _, err := lookup(ctx, db, 0); err != nil {
			return err
		}
	}

	// 1. The flypg way.
	t0 := time.Now()
	td, err := create(ctx, lax, "buy milk", false)
	if err != nil {
		return err
	}
	write := time.Since(t0)
	seen, read, err := get(ctx, lax, td.ID)
	if err != nil {
		return err
	}
	p("1. POST /todos in lax                %8s  (INSERT sent to syd, answer after lax's replica replayed it)\n", ms(write))
	p("   GET /todos/%-4d in lax right after %8s  found: %s\n\n", td.ID, ms(read), yes(seen))

	// 2. NoAwait.
	t0 = time.Now()
	td, err = create(ctx, lax, "walk dog", true)
	if err != nil {
		return err
	}
	write = time.Since(t0)
	seen, read, err = get(ctx, lax, td.ID)
	if err != nil {
		return err
	}
	p("2. POST /todos?noawait=1 in lax      %8s  (flypg.NoAwait: answer once syd committed)\n", ms(write))
	race := "the WAL was still crossing the WAN"
	if seen {
		race = "replication won the race this time; nothing guarantees it"
	}
	p("   GET /todos/%-4d in lax right after %8s  found: %s  (%s)\n\n", td.ID, ms(read), yes(seen), race)

	// 3. Read-after-write, 20 times each way: flypg, and a naive split that
	// writes straight to the primary and reads the replica (what
	// read/write-splitting resolvers do).
	const rounds = 20
	var flypgTook, naiveTook time.Duration
	var flypgStale, naiveStale int
	for i := range rounds {
		t0 := time.Now()
		td, err := create(ctx, lax, fmt.Sprint("flypg ", i), false)
		if err != nil {
			return err
		}
		seen, _, err := get(ctx, lax, td.ID)
		if err != nil {
			return err
		}
		flypgTook += time.Since(t0)
		if !seen {
			flypgStale++
		}

		t0 = time.Now()
		var id int64
		if err := l.direct.QueryRowContext(ctx, "INSERT INTO todos (title) VALUES ($1) RETURNING id", fmt.Sprint("naive ", i)).Scan(&id); err != nil {
			return fmt.Errorf("naive split: insert on the primary: %w", err)
		}
		seen, _, err = lookup(ctx, l.replica, id)
		if err != nil {
			return fmt.Errorf("naive split: read on the replica: %w", err)
		}
		naiveTook += time.Since(t0)
		if !seen {
			naiveStale++
		}
	}
	p("3. create, then read it back in lax, %d times each way:\n", rounds)
	p("   flypg (the app in lax)                   %8s each, stale reads: %2d/%d\n", ms(flypgTook/rounds), flypgStale, rounds)
	p("   naive split (pgx to syd, read replica)   %8s each, stale reads: %2d/%d  <- what flypg prevents\n\n", ms(naiveTook/rounds), naiveStale, rounds)

	// 4. Ten inserts in one round trip.
	titles := make([]string, 10)
	for i := range titles {
		titles[i] = fmt.Sprintf("batch item %d", i+1)
	}
	t0 = time.Now()
	var batch []todo
	status, err := lax.do(ctx, "POST", "/todos/batch", map[string]any{"titles": titles}, &batch)
	if err := expect(status, err, http.StatusCreated, "POST /todos/batch"); err != nil {
		return err
	}
	write = time.Since(t0)
	var visible int
	for _, td := range batch {
		seen, _, err := get(ctx, lax, td.ID)
		if err != nil {
			return err
		}
		if seen {
			visible++
		}
	}
	p("4. POST /todos/batch (10 titles)     %8s  (flypg.CallPrimary: 10 INSERTs run in syd, one round trip)\n", ms(write))
	p("   read back in lax at once                    %d/10 found\n\n", visible)

	var st nodeStats
	status, err = lax.do(ctx, "GET", "/stats", nil, &st)
	if err := expect(status, err, http.StatusOK, "GET /stats"); err != nil {
		return err
	}
	p("lax node: %d statements forwarded to syd, %d run on lax's replica, %d waited for replay, %d did not wait\n",
		st.Forwarded, st.Local, st.Awaits, st.Skipped)
	return nil
}

// create posts a todo; noAwait asks the app not to wait for replay.
func create(ctx context.Context, a *app, title string, noAwait bool) (todo, error) {
	path := "/todos"
	if noAwait {
		path += "?noawait=1"
	}
	var td todo
	status, err := a.do(ctx, "POST", path, map[string]string{"title": title}, &td)
	return td, expect(status, err, http.StatusCreated, "POST "+path+" in "+a.region)
}

// get reads a todo: found, or 404.
func get(ctx context.Context, a *app, id int64) (bool, time.Duration, error) {
	t0 := time.Now()
	status, err := a.do(ctx, "GET", "/todos/"+strconv.FormatInt(id, 10), nil, nil)
	took := time.Since(t0)
	if err == nil && status == http.StatusNotFound {
		return false, took, nil
	}
	return true, took, expect(status, err, http.StatusOK, "GET /todos/{id} in "+a.region)
}

func expect(status int, err error, want int, what string) error {
	if err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("%s: HTTP %d, want %d", what, status, want)
	}
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
