package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
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

// demoFlags are the flags demo and up share.
func demoFlags(fs *flag.FlagSet) *labOptions {
	o := &labOptions{}
	fs.DurationVar(&o.rtt, "rtt", 60*time.Millisecond, "round-trip time of the simulated WAN between syd and each other region")
	fs.DurationVar(&o.amsDelay, "ams-delay", 500*time.Millisecond, "how far behind the primary ams's replica replays (recovery_min_apply_delay)")
	return o
}

func checkLabOptions(cmd string, o labOptions) error {
	switch {
	case o.rtt < 0:
		return usageError{err: fmt.Errorf("%s: --rtt %v: must not be negative", cmd, o.rtt)}
	case o.amsDelay < 0:
		return usageError{err: fmt.Errorf("%s: --ams-delay %v: must not be negative", cmd, o.amsDelay)}
	}
	return nil
}

func parseDemoFlags(args []string, output io.Writer) (labOptions, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(output)
	o := demoFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: flypg-lab demo [--rtt 60ms] [--ams-delay 500ms]

Starts a PostgreSQL primary in region syd and hot standbys in lax and ams (a
simulated WAN between syd and each; ams's standby also replays late), runs
the example app (examples/todo) in each region as a separate process, and
narrates what flypg does. Everything is torn down at exit. Run it from the
flypg repository: it builds the app.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return *o, err
	}
	return *o, checkLabOptions("demo", *o)
}

func runDemo(ctx context.Context, args []string, stdout io.Writer) (err error) {
	o, err := parseDemoFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	l, err := startLabWithApps(ctx, o, nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	defer httpClient.CloseIdleConnections()
	return demo(ctx, stdout, l)
}

func demo(ctx context.Context, out io.Writer, l *lab) error {
	syd, lax, ams := l.app("syd"), l.app("lax"), l.app("ams")
	p := func(format string, args ...any) { fmt.Fprintf(out, format, args...) }
	p("\nflypg lab: primary database in syd, replicas in lax and ams, %v round trip between syd and each;\n", l.rtt)
	p("ams's replica replays %v behind the primary.\n", l.amsDelay)
	p("The example todo app runs in each region (syd pid %d %s, lax pid %d %s, ams pid %d %s).\n\n",
		syd.pid, syd.url, lax.pid, lax.url, ams.pid, ams.url)

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

	// 5. The next request lands in another region.
	if err := demoToken(ctx, p, l, lax, ams); err != nil {
		return err
	}

	var st nodeStats
	status, err = lax.do(ctx, "GET", "/stats", nil, &st)
	if err := expect(status, err, http.StatusOK, "GET /stats"); err != nil {
		return err
	}
	p("lax node: %d statements forwarded to syd, %d run on lax's replica, %d waited for replay, %d did not wait\n",
		st.Forwarded, st.Local, st.Awaits, st.Skipped)
	return nil
}

// tokenHeader is the header the example app's middleware (flypghttp) puts
// the causal token in, and reads it from.
const tokenHeader = "Flypg-Token"

// demoRounds is how often the token part of the demo repeats each way.
const demoRounds = 3

// demoToken writes in lax and sends the next request to ams, whose replica
// replays late: stale without the write's token, never with it.
func demoToken(ctx context.Context, p func(string, ...any), l *lab, lax, ams *app) error {
	var staleWithout, staleWith int
	var waited durations
	for i := range demoRounds {
		td, tok, err := createToken(ctx, lax, fmt.Sprint("moving ", i))
		if err != nil {
			return err
		}
		if tok == "" {
			return fmt.Errorf("POST /todos in lax: the answer carries no %s header", tokenHeader)
		}
		seen, _, err := getWith(ctx, ams, td.ID, "")
		if err != nil {
			return err
		}
		if !seen {
			staleWithout++
		}
		seen, took, err := getWith(ctx, ams, td.ID, tok)
		if err != nil {
			return err
		}
		if !seen {
			staleWith++
		}
		waited = append(waited, took)
	}
	p("5. POST /todos in lax, then the next request in ams (replica %v behind), %d times:\n", l.amsDelay, demoRounds)
	p("   GET /todos/{id} in ams without the token        stale reads: %d/%d  <- the user misses its own write\n", staleWithout, demoRounds)
	p("   GET /todos/{id} in ams with lax's %s  stale reads: %d/%d  (%s each, p50: ams waited for its replica)\n\n",
		tokenHeader, staleWith, demoRounds, ms(waited.p50()))
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

// createToken posts a todo and returns the causal token of the answer.
func createToken(ctx context.Context, a *app, title string) (todo, string, error) {
	var td todo
	status, h, err := a.doWith(ctx, "POST", "/todos", nil, map[string]string{"title": title}, &td)
	if err := expect(status, err, http.StatusCreated, "POST /todos in "+a.region); err != nil {
		return td, "", err
	}
	return td, h.Get(tokenHeader), nil
}

// get reads a todo: found, or 404.
func get(ctx context.Context, a *app, id int64) (bool, time.Duration, error) {
	return getWith(ctx, a, id, "")
}

// getWith reads a todo, sending token (if any) in the token header.
func getWith(ctx context.Context, a *app, id int64, token string) (bool, time.Duration, error) {
	var h http.Header
	if token != "" {
		h = http.Header{tokenHeader: {token}}
	}
	t0 := time.Now()
	status, _, err := a.doWith(ctx, "GET", "/todos/"+strconv.FormatInt(id, 10), h, nil, nil)
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
