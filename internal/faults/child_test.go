package faults

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
)

// A node in a separate OS process: this test binary, re-executed with a
// spec in its environment. It starts the node, reports its addresses on
// stdout (JSON lines), optionally runs a checker on the node's own database
// or holds a remote transaction, and closes the node when stdin ends, on
// "stop", or on SIGTERM — a graceful exit. SIGKILL is the test's other way
// out.

const (
	childEnv = "FLYPG_FAULTS_CHILD"
	whoEnv   = "FLYPG_FAULTS_NAME"
)

// childSpec is what a child runs.
type childSpec struct {
	Region, PrimaryRegion, DSN, Name  string
	GossipAddr, RPCAddr, AdvertiseRPC string
	Join                              []string
	Secret                            string
	RoleCheck, AwaitTimeout           time.Duration
	// Checker runs the checker on the node's database once it is ready.
	Checker *childChecker `json:",omitempty"`
	// HoldTx opens a read-write transaction inserting this value into
	// table held, reports "tx-open", and commits on "commit".
	HoldTx string `json:",omitempty"`
}

type childChecker struct {
	PrimaryDSN string
	Clients    int
	Duration   time.Duration
	OpTimeout  time.Duration
	Mix        checker.Mix
}

// childEvent is one line a child prints.
type childEvent struct {
	Event  string          `json:"event"`
	Name   string          `json:"name,omitempty"`
	Gossip string          `json:"gossip,omitempty"`
	RPC    string          `json:"rpc,omitempty"`
	Err    string          `json:"err,omitempty"`
	Report *checker.Report `json:"report,omitempty"`
}

func init() {
	// Which process served a call: the test kills that one.
	flypg.RegisterProc("faults.whoami", func(ctx context.Context, db *sql.DB, _ struct{}) (string, error) {
		return os.Getenv(whoEnv), nil
	})
}

func runChild(specJSON string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad spec:", err)
		return 2
	}
	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	emit := func(e childEvent) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = out.Encode(e)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node, err := flypg.Start(ctx, flypg.Config{
		Region: spec.Region, PrimaryRegion: spec.PrimaryRegion, DSN: spec.DSN, NodeName: spec.Name,
		GossipAddr: spec.GossipAddr, RPCAddr: spec.RPCAddr, AdvertiseRPCAddr: spec.AdvertiseRPC, Join: spec.Join,
		Secret: []byte(spec.Secret), GossipProfile: "local", RoleCheckInterval: spec.RoleCheck,
		AwaitTimeout: spec.AwaitTimeout, Logger: log.With("node", spec.Name),
	})
	if err != nil {
		emit(childEvent{Event: "error", Err: err.Error()})
		return 1
	}
	emit(childEvent{Event: "ready", Name: node.Name(), Gossip: node.GossipAddr(), RPC: node.RPCAddr()})

	// stop: stdin closed or "stop", or SIGTERM.
	stop := make(chan struct{})
	var once sync.Once
	quit := func() { once.Do(func() { close(stop) }) }
	cmds := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line == "stop" {
				quit()
			} else {
				cmds <- line
			}
		}
		quit()
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		quit()
	}()

	var work sync.WaitGroup
	db := node.OpenDB()
	if spec.HoldTx != "" {
		work.Add(1)
		go func() {
			defer work.Done()
			holdTx(ctx, db, spec.HoldTx, cmds, emit)
		}()
	}
	if spec.Checker != nil {
		work.Add(1)
		go func() {
			defer work.Done()
			rep, err := childCheck(ctx, node, db, spec.Checker, emit)
			ev := childEvent{Event: "report", Report: rep}
			if err != nil {
				ev.Err = err.Error()
			}
			emit(ev)
		}()
	}
	<-stop
	cancel()
	work.Wait()
	_ = db.Close()
	if err := node.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "child: close:", err)
	}
	emit(childEvent{Event: "closed"})
	return 0
}

func holdTx(ctx context.Context, db *sql.DB, v string, cmds <-chan string, emit func(childEvent)) {
	fail := func(err error) { emit(childEvent{Event: "tx-done", Err: err.Error()}) }
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO held (v) VALUES ($1)", v); err != nil {
		_ = tx.Rollback()
		fail(err)
		return
	}
	emit(childEvent{Event: "tx-open"})
	select {
	case cmd := <-cmds:
		if cmd != "commit" {
			_ = tx.Rollback()
			fail(fmt.Errorf("unknown command %q", cmd))
			return
		}
	case <-ctx.Done():
		_ = tx.Rollback()
		fail(ctx.Err())
		return
	}
	err = tx.Commit()
	ev := childEvent{Event: "tx-done"}
	if err != nil {
		ev.Err = err.Error()
	}
	emit(ev)
}

func childCheck(ctx context.Context, node *flypg.Node, db *sql.DB, c *childChecker, emit func(childEvent)) (*checker.Report, error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := node.WaitReady(wctx)
	cancel()
	if err != nil {
		return nil, err
	}
	primary, err := sql.Open("pgx", c.PrimaryDSN)
	if err != nil {
		return nil, err
	}
	defer primary.Close()
	l, err := checker.Start(ctx, checker.Config{
		DBs:     []*checker.Target{checker.NewTarget(node.Name(), node.Region(), db, node)},
		Primary: primary, Clients: c.Clients, Duration: c.Duration, OpTimeout: c.OpTimeout, Mix: c.Mix,
	})
	if err != nil {
		return nil, err
	}
	if err := l.WaitOK(ctx, 20); err != nil {
		return nil, err
	}
	emit(childEvent{Event: "checking"})
	rep, err := l.Finish(ctx, nil)
	if err == nil && rep == nil {
		err = errors.New("no report")
	}
	return rep, err
}
