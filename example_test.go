package flypg_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/lsn"
)

// The whole change for an app: open "flypg" with the primary's URL (Fly.io's
// DATABASE_URL, the same in every region). With no PRIMARY_REGION in the
// environment this is a pass-through to pgx.
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

// A node configured explicitly, as a long-running app would: configuration
// errors show at start-up rather than at the first query.
func ExampleStart() {
	cfg, err := flypg.ConfigFromEnv() // FLY_REGION, PRIMARY_REGION, DATABASE_URL, FLYPG_SECRET, …
	if err != nil {
		log.Fatal(err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx := context.Background()
	node, err := flypg.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	// Optional: wait until writes can go somewhere.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := node.WaitReady(wctx); err != nil {
		log.Printf("no node with the primary yet: %v", err)
	}

	db := node.OpenDB()
	defer db.Close()
}

// A second database through the same node: url is that database's primary
// URL, and its local copy is derived as the node's own is.
func ExampleNode_Open() {
	var node *flypg.Node // from flypg.Start
	analytics, err := node.Open(os.Getenv("ANALYTICS_DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer analytics.Close()
	// Its writes run on its own primary and are awaited on its own replica.
	if _, err := analytics.ExecContext(context.Background(), "INSERT INTO events (kind) VALUES ($1)", "signup"); err != nil {
		log.Fatal(err)
	}
}

// Node.Driver is a database/sql driver bound to the node, for wrappers that
// take a driver rather than a connector (sqlmw, otelsql.WrapDriver).
func ExampleNode_Driver() {
	var node *flypg.Node // from flypg.Start
	drv := node.Driver().(driver.DriverContext)
	c, err := drv.OpenConnector(os.Getenv("DATABASE_URL")) // as node.Open does
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
}

// DefaultNode is the node sql.Open("flypg", …) uses: the first one started,
// or the one its first connection started from the environment. An app that
// never calls Start closes it on shutdown, to leave the cluster at once.
func ExampleDefaultNode() {
	db, err := sql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(context.Background()); err != nil { // starts the node if none was
		log.Fatal(err)
	}
	// … serve until shutdown, then:
	if node := flypg.DefaultNode(); node != nil {
		if err := node.Close(); err != nil {
			log.Print(err)
		}
	}
}

// ReplicaURL derives a region's local database from the primary's URL as
// fly_postgres does.
func ExampleReplicaURL() {
	primary := "postgres://app:pass@myapp-db.internal:5432/app?sslmode=disable"
	for _, region := range []string{"syd", "lax"} {
		u, err := flypg.ReplicaURL(primary, region, "syd")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(region, u)
	}
	flycast, _ := flypg.ReplicaURL("postgres://app:pass@myapp-db.flycast:5432/app", "lax", "syd")
	fmt.Println("flycast", flycast)
	dev, _ := flypg.ReplicaURL(primary, "local", "")
	fmt.Println("dev", dev)
	_, err := flypg.ReplicaURL("postgres://app:pass@10.0.0.5:5432/app", "lax", "syd")
	fmt.Println(err)
	// Output:
	// syd postgres://app:pass@top1.nearest.of.myapp-db.internal:5432/app?sslmode=disable
	// lax postgres://app:pass@top1.nearest.of.myapp-db.internal:5433/app?sslmode=disable
	// flycast postgres://app:pass@myapp-db.flycast:5433/app
	// dev postgres://app:pass@myapp-db.internal:5432/app?sslmode=disable
	// flypg: the database URL's host 10.0.0.5 is an address, so the lax replica's address cannot be derived from it: set FLYPG_DSN (Config.DSN) to the local database
}

// Writes whose result the caller does not read back need not wait for
// replication.
func ExampleNoAwait() {
	db, err := sql.Open(flypg.DriverName, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := flypg.NoAwait(context.Background())
	if _, err := db.ExecContext(ctx, "INSERT INTO audit_log (event) VALUES ($1)", "login"); err != nil {
		log.Fatal(err)
	}
}

// A read that must see every committed write runs on the primary; so does a
// read-only transaction begun under OnPrimary.
func ExampleOnPrimary() {
	var db *sql.DB // sql.Open("flypg", …) or node.OpenDB()
	var balance int64
	ctx := flypg.OnPrimary(context.Background())
	if err := db.QueryRowContext(ctx, "SELECT balance FROM accounts WHERE id = $1", 42).Scan(&balance); err != nil {
		log.Fatal(err)
	}

	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	var orders int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM orders WHERE account = $1", 42).Scan(&orders); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil { // nothing to wait for: it wrote nothing
		log.Fatal(err)
	}
}

// Read-your-writes across requests: the first request records its writes'
// LSN; the next, on any node in any region, waits for it before reading.
func ExampleAfterLSN() {
	var db *sql.DB
	ctx := context.Background()

	// Request 1: a write, tracked.
	tctx, tracked := flypg.Track(ctx)
	if _, err := db.ExecContext(tctx, "UPDATE profiles SET name = $1 WHERE id = $2", "Ada", 7); err != nil {
		log.Fatal(err)
	}
	last := tracked.LSN() // hand it to the client (see Node.Token)

	// Request 2, anywhere: wait for it, locally if possible, else read on
	// the primary.
	var name string
	if err := db.QueryRowContext(flypg.AfterLSN(ctx, last), "SELECT name FROM profiles WHERE id = $1", 7).Scan(&name); err != nil {
		log.Fatal(err)
	}
}

// Track records the highest commit LSN of the writes under its context.
func ExampleTrack() {
	var db *sql.DB
	ctx, tracked := flypg.Track(context.Background())
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO orders (item) VALUES ($1)", "tea"); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed at", tracked.LSN())
}

// A causal token carries a Tracked LSN through a client, signed: what
// package flypghttp does with a cookie and a header, by hand.
func ExampleNode_Token() {
	var node *flypg.Node
	db := node.OpenDB()

	write := func(w http.ResponseWriter, r *http.Request) {
		ctx, tracked := flypg.Track(r.Context())
		if _, err := db.ExecContext(ctx, "INSERT INTO posts (body) VALUES ($1)", r.FormValue("body")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if tok := node.Token(tracked.LSN()); tok != "" { // "" in dev mode
			w.Header().Set("Flypg-Token", tok)
		}
	}
	read := func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		// A malformed, forged, foreign or expired token is ErrInvalidToken:
		// serve the request as if it had none.
		if l, err := node.ParseToken(r.Header.Get("Flypg-Token")); err == nil {
			ctx = flypg.AfterLSN(ctx, l)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM posts").Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, n)
	}
	http.HandleFunc("POST /posts", write)
	http.HandleFunc("GET /posts", read)
}

// A pipelined remote transaction: BEGIN, the INSERTs and COMMIT travel to
// the primary in one round trip.
func ExamplePipeline() {
	var db *sql.DB
	ctx := context.Background()
	tx, err := db.BeginTx(flypg.Pipeline(ctx), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	for _, item := range []string{"a", "b", "c"} {
		// Returns at once; a statement's error is returned by a later
		// call, and by Commit.
		if _, err := tx.ExecContext(ctx, "INSERT INTO items (name) VALUES ($1)", item); err != nil {
			log.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err) // e.g. a *pgconn.PgError from the second INSERT
	}
}

type importReq struct{ Titles []string }
type importResp struct{ Inserted int }

// Work that makes many statements runs next to the primary in one round
// trip (fly_postgres's rpc_and_wait).
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
		log.Printf("imported %d, but not yet visible here (LSN %s)", resp.Inserted, ae.LSN)
	case err != nil:
		log.Fatal(err)
	default:
		log.Printf("imported %d", resp.Inserted)
	}
}

type regionReq struct{ Key string }
type regionResp struct{ Hits int64 }

// A procedure run on a node of another region, on that node's own local
// database, without waiting for replication (fly_rpc's rpc_region).
func ExampleCallRegion() {
	flypg.RegisterProc("cache.hits", func(ctx context.Context, db *sql.DB, req regionReq) (regionResp, error) {
		var r regionResp
		err := db.QueryRowContext(ctx, "SELECT count(*) FROM hits WHERE key = $1", req.Key).Scan(&r.Hits)
		return r, err
	})

	var node *flypg.Node
	resp, err := flypg.CallRegion[regionReq, regionResp](context.Background(), node, "ams", "cache.hits", regionReq{Key: "home"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Hits)
}

// outcome says what a write's error means.
func outcome(err error) string {
	var ae *flypg.AwaitError
	var ce *flypg.CommittedError
	switch {
	case err == nil:
		return "committed and visible locally"
	case errors.As(err, &ae):
		return fmt.Sprintf("committed at %s (%d rows), not replayed locally in %v", ae.LSN, ae.RowsAffected, ae.Waited)
	case errors.As(err, &ce):
		return fmt.Sprintf("committed (%d rows), commit position unknown", ce.RowsAffected)
	case errors.Is(err, flypg.ErrUnknownOutcome):
		return "maybe committed: check before retrying"
	default:
		return "not committed"
	}
}

// An *AwaitError is a committed write the local replica had not replayed in
// time; it carries the result, so nothing needs to run again.
func ExampleAwaitError() {
	err := error(&flypg.AwaitError{LSN: lsn.LSN(0x3000148), Waited: 5 * time.Second, Err: context.DeadlineExceeded, RowsAffected: 1})
	fmt.Println(outcome(err))
	fmt.Println(errors.Is(err, flypg.ErrAwaitTimeout), errors.Is(err, context.DeadlineExceeded))
	// Output:
	// committed at 0/3000148 (1 rows), not replayed locally in 5s
	// true true
}

// A *CommittedError is a committed write whose commit position could not be
// read, so it was not awaited.
func ExampleCommittedError() {
	err := fmt.Errorf("save order: %w", &flypg.CommittedError{Err: errors.New("connection reset"), RowsAffected: 1})
	fmt.Println(outcome(err))
	fmt.Println(errors.Is(err, flypg.ErrCommitted))
	fmt.Println(outcome(fmt.Errorf("save order: %w", flypg.ErrNoPrimary)))
	// Output:
	// committed (1 rows), commit position unknown
	// true
	// not committed
}

// slowForwards logs forwarded requests and waits for replay that took long.
type slowForwards struct {
	log   *slog.Logger
	limit time.Duration
}

type startedKey struct{}

func (o slowForwards) ForwardStart(ctx context.Context, f flypg.Forward) context.Context {
	return context.WithValue(ctx, startedKey{}, time.Now())
}

func (o slowForwards) ForwardEnd(ctx context.Context, node string, err error) {
	if start, ok := ctx.Value(startedKey{}).(time.Time); ok && time.Since(start) > o.limit {
		o.log.Warn("slow forward", "node", node, "took", time.Since(start), "err", err)
	}
}

func (o slowForwards) AwaitStart(ctx context.Context, a flypg.Await) context.Context {
	return context.WithValue(ctx, startedKey{}, time.Now())
}

func (o slowForwards) AwaitEnd(ctx context.Context, err error) {
	if start, ok := ctx.Value(startedKey{}).(time.Time); ok && time.Since(start) > o.limit {
		o.log.Warn("slow replay", "took", time.Since(start), "err", err)
	}
}

// Config.Observer hears of every forwarded request and every wait for
// replay (package flypgotel makes OpenTelemetry spans of them).
func ExampleObserver() {
	cfg, err := flypg.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	cfg.Observer = slowForwards{log: slog.Default(), limit: 200 * time.Millisecond}
	node, err := flypg.Start(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
}
