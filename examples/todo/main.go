// Command todo is a small multi-region JSON todo service built on flypg: the
// same binary runs in every region, reads from the local database and
// writes through flypg, which forwards writes from replica regions to the
// primary region and waits until they are visible locally, so a client that
// creates a todo and reads it back from the same region always finds it.
//
// The handlers are plain database/sql; flypg appears only where the app
// opts in — NoAwait, CallPrimary for the batch endpoint, and flypg's errors
// mapped to HTTP statuses.
//
//	POST /todos {"title": "..."}            create (?noawait=1: answer before replay)
//	POST /todos/batch {"titles": [...]}     create several in one round trip
//	GET  /todos, GET /todos/{id}            read, always on the local database
//	POST /todos/{id}/complete               mark done
//	GET  /healthz                           region, role, ready (503 until the
//	                                        primary region is reachable)
//	GET  /stats                             the node's flypg.Stats
//	GET  /metrics                           Prometheus metrics (package metrics
//	                                        and the Go runtime)
//
// Every todo route runs under flypghttp.Middleware: a response to a write
// carries a causal token (cookie flypg-token, header Flypg-Token), and a
// request that sends it back — to any node, in any region — waits until
// that node's database has replayed the write, so a client never misses
// its own write, wherever its next request lands.
//
// Configuration is by environment only:
//
//	FLY_REGION, PRIMARY_REGION  this node's region and the primary database's
//	                            (both unset: dev mode, a plain pass-through)
//	DATABASE_URL                the primary's URL, the same in every region;
//	                            replica regions use the region's replica
//	                            (flypg.ReplicaURL)
//	FLYPG_DSN                   the local database's URL, used as is: for
//	                            layouts other than Fly.io's
//	                            top1.nearest.of.<host>:5433 replicas (flypg-lab
//	                            sets it)
//	FLYPG_SECRET                shared cluster secret, at least 32 random bytes
//	                            (required outside dev mode; make one with
//	                            `go run ./cmd/flypg-lab secret`)
//	FLYPG_JOIN                  comma-separated gossip addresses of peers
//	FLYPG_GOSSIP_ADDR           gossip bind host:port (default :7946)
//	FLYPG_RPC_ADDR              write-link listen host:port (default :7947)
//	FLYPG_ADVERTISE_RPC_ADDR    write-link address peers dial (NAT, proxy)
//	FLYPG_GOSSIP_PROFILE        wan (default), lan or local
//	LISTEN_ADDR or PORT         HTTP listen address (default :8080)
//
// The table is created at startup by nodes in the primary region (and in dev
// mode) only. A replica-region node never runs DDL at startup: through flypg
// it would be forwarded, so every replica-region boot would depend on the
// primary region being reachable, and a fleet of nodes would race to run the
// same statement across the WAN for no benefit. The schema belongs to the
// primary region; a replica-region node that starts first serves errors for
// the missing table until the primary region has created it and the DDL has
// replicated.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flypg/flypg"
)

// shutdownTimeout bounds how long in-flight requests may finish after a
// signal; a platform usually kills the process soon after anyway.
const shutdownTimeout = 10 * time.Second

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("todo: exiting", "err", err)
		os.Exit(1)
	}
}

// run starts the node and serves HTTP until ctx ends, then shuts down
// gracefully: in-flight requests finish, then the database and the node
// close.
func run(ctx context.Context, log *slog.Logger) (err error) {
	cfg, err := config()
	if err != nil {
		return err
	}
	cfg.Logger = log
	node, err := flypg.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start flypg: %w", err)
	}
	defer func() { err = errors.Join(err, node.Close()) }()
	db := node.OpenDB()
	defer func() { err = errors.Join(err, db.Close()) }()

	if err := setup(ctx, db, node, log); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", listenAddr())
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           newServer(db, node, log),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Info("todo: serving", "addr", ln.Addr().String(), "region", node.Region(),
		"primary_region", node.PrimaryRegion(), "role", role(node),
		"gossip_addr", node.GossipAddr(), "rpc_addr", node.RPCAddr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("todo: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// config is flypg's configuration from the environment. DATABASE_URL is
// the primary's URL in every region; flypg derives a replica region's local
// database from it by Fly.io's naming convention, and FLYPG_DSN names the
// local database for any other layout (a lab on one machine, another
// platform).
func config() (flypg.Config, error) {
	cfg, err := flypg.ConfigFromEnv()
	if err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// listenAddr is $LISTEN_ADDR, else :$PORT, else :8080.
func listenAddr() string {
	if a := os.Getenv("LISTEN_ADDR"); a != "" {
		return a
	}
	if p := os.Getenv("PORT"); p != "" {
		return ":" + p
	}
	return ":8080"
}

const schema = `CREATE TABLE IF NOT EXISTS todos (
	id bigserial PRIMARY KEY,
	title text NOT NULL,
	done bool NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now()
)`

// setup creates the table where this node owns the schema: in the primary
// region and in dev mode (see the package comment for why replica regions
// do not).
func setup(ctx context.Context, db execer, node *flypg.Node, log *slog.Logger) error {
	if role(node) == roleReplica {
		log.Info("todo: replica region: leaving the schema to the primary region")
		return nil
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create table todos: %w", err)
	}
	return nil
}
