package faults

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
	"github.com/flypg/flypg/internal/pgcluster"
)

var secret = "u0Yt9wq3Zp2LrM8xKc5vBn1sHd7fGj4aQe6iWo0yTk8=" // openssl rand -base64 32

// env is one test's servers and nodes.
type env struct {
	t       *testing.T
	ctx     context.Context
	c       *pgcluster.Cluster
	primary *sql.DB // plain pgx on the primary (the original one)
	logs    *syncBuffer
}

func newEnv(t *testing.T, opts pgcluster.Options) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pick(3*time.Minute, 10*time.Minute))
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, logs: &syncBuffer{}}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	e.c = pgcluster.ForTest(t, opts)
	var err error
	e.primary, err = sql.Open("pgx", e.c.Primary.DSN())
	require.NoError(t, err)
	t.Cleanup(func() {
		e.primary.Close()
		if t.Failed() {
			t.Logf("node logs (warnings):\n%s", e.logs.String())
		}
	})
	return e
}

// logger collects a node's warnings (everything with
// FLYPG_FAULTS_DEBUG=1), shown if the test fails.
func (e *env) logger(name string) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("FLYPG_FAULTS_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: level})).With("node", name)
}

// node starts an in-process node; it is closed at cleanup.
func (e *env) node(name, region, dsn string, join []string, mod func(*flypg.Config)) *flypg.Node {
	e.t.Helper()
	cfg := flypg.Config{Region: region, PrimaryRegion: "syd", DSN: dsn, NodeName: name,
		GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", Join: join, Secret: []byte(secret),
		GossipProfile: "local", Logger: e.logger(name)}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	n, err := flypg.Start(ctx, cfg)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = n.Close() })
	if cfg.Region == cfg.PrimaryRegion && dsn == e.c.Primary.DSN() {
		// Serve only once the node knows its database is the primary. (A
		// request served before the node's first role check races with
		// Start's write of the node's name: a root bug, reported.)
		e.ready(n)
	}
	return n
}

// ready waits until n can write.
func (e *env) ready(n *flypg.Node) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	require.NoError(e.t, n.WaitReady(ctx), "%s finds a node with the primary", n.Name())
}

// openDB opens n's database for clients, with a bounded pool as an app
// would have.
func (e *env) openDB(n *flypg.Node, conns int) *sql.DB {
	db := n.OpenDB()
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	e.t.Cleanup(func() { db.Close() })
	return db
}

// waitMembers waits until n sees exactly the named members (itself
// included), or that name is absent (want false).
func (e *env) waitMember(n *flypg.Node, name string, want bool, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		has := slices.ContainsFunc(n.Stats().Members, func(m flypg.MemberStats) bool { return m.Name == name })
		if has == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: member %s present=%v after %v, want %v (members %v)", n.Name(), name, has, within, want, n.Stats().Members)
		}
		time.Sleep(20 * time.Millisecond) // polling a state; there is no event to wait on
	}
}

// whoami asks which process serves n's primary calls ("" for this one).
func (e *env) whoami(n *flypg.Node) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	who, err := flypg.CallPrimary[struct{}, string](ctx, n, "faults.whoami", struct{}{})
	require.NoError(e.t, err)
	return who
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// proc is a node running as a separate OS process.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan childEvent
	stderr *syncBuffer
	exited chan struct{}
	ready  childEvent

	mu      sync.Mutex
	stopped bool // SIGSTOPped
}

// spawn starts a node process and waits until it is up.
func (e *env) spawn(spec childSpec) *proc {
	t := e.t
	t.Helper()
	if spec.PrimaryRegion == "" {
		spec.PrimaryRegion = "syd"
	}
	if spec.GossipAddr == "" {
		spec.GossipAddr = "127.0.0.1:0"
	}
	if spec.RPCAddr == "" {
		spec.RPCAddr = "127.0.0.1:0"
	}
	spec.Secret = secret
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{childEnv + "=" + string(b), whoEnv + "=" + spec.Name, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if v := os.Getenv("GORACE"); v != "" {
		cmd.Env = append(cmd.Env, "GORACE="+v)
	}
	p := &proc{t: t, name: spec.Name, cmd: cmd, events: make(chan childEvent, 16), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	p.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var ev childEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = childEvent{Event: "garbage", Err: sc.Text()}
			}
			p.events <- ev
		}
		_ = cmd.Wait()
		close(p.exited)
		close(p.events)
	}()
	t.Cleanup(func() {
		go func() {
			for range p.events { // events nobody waited for must not block the reader
			}
		}()
		p.resume()
		_ = p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("process %s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	ev, err := p.next(e.ctx, "ready", 30*time.Second)
	require.NoError(t, err, "process %s: %s", spec.Name, p.stderr.String())
	p.ready = ev
	return p
}

// next waits for the process's next event of kind (skipping others).
func (p *proc) next(ctx context.Context, kind string, within time.Duration) (childEvent, error) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				return childEvent{}, fmt.Errorf("process %s exited before %q (%v)", p.name, kind, p.cmd.ProcessState)
			}
			if ev.Event == "error" {
				return ev, fmt.Errorf("process %s: %s", p.name, ev.Err)
			}
			if ev.Event == kind {
				return ev, nil
			}
		case <-timer.C:
			return childEvent{}, fmt.Errorf("process %s: no %q within %v", p.name, kind, within)
		case <-ctx.Done():
			return childEvent{}, ctx.Err()
		}
	}
}

func (p *proc) send(cmd string) {
	_, err := fmt.Fprintln(p.stdin, cmd)
	require.NoError(p.t, err)
}

// kill SIGKILLs the process and waits until it is gone.
func (p *proc) kill() {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.exited
}

// terminate stops the process gracefully (SIGTERM: the node closes) and
// waits until it has exited.
func (p *proc) terminate() {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("process %s did not exit 20 s after SIGTERM", p.name)
	}
}

// pause freezes the process (SIGSTOP): its sockets stay open, nothing
// answers — a stall, as a GC pause or a frozen VM.
func (p *proc) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGSTOP))
	p.stopped = true
}

func (p *proc) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		p.stopped = false
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// finish stops the checker, verifies it against primary (nil: the
// original primary) and fails the test on any violation, with the
// histories.
func (e *env) finish(l *checker.Load, primary *sql.DB) *checker.Report {
	t := e.t
	t.Helper()
	l.Stop()
	rep, err := l.Finish(e.ctx, primary)
	require.NoError(t, err)
	require.NotNil(t, rep)
	t.Logf("checker: %s", rep.Summary())
	if rep.Err() != nil {
		logFailures(t, rep)
	}
	require.NoError(t, rep.Err())
	return rep
}

// window is a span of run time during which errors are expected.
type window struct {
	name     string
	from, to time.Duration
}

// failuresOutside lists the failed operations that ended outside every
// window, and the outcomes of all failures (writes and reads).
func failuresOutside(rep *checker.Report, ws ...window) (outside []checker.Op, kinds map[string]int) {
	kinds = map[string]int{}
	for _, op := range rep.Failures {
		kinds[op.Kind.String()+":"+op.Outcome.String()]++
		in := false
		for _, w := range ws {
			if op.End >= w.from && op.Start <= w.to {
				in = true
				break
			}
		}
		if !in {
			outside = append(outside, op)
		}
	}
	return outside, kinds
}

// assertWriteOutcomes asserts every failed write has one of the allowed
// outcomes. A transaction that failed before Commit never committed, and
// says so whatever its error, so it passes.
func assertWriteOutcomes(t *testing.T, rep *checker.Report, allowed ...checker.Outcome) {
	t.Helper()
	bad := map[checker.Outcome][]string{}
	for _, op := range rep.Failures {
		if op.Kind.Write() && !op.BeforeCommit && !slices.Contains(allowed, op.Outcome) {
			if len(bad[op.Outcome]) < 5 {
				bad[op.Outcome] = append(bad[op.Outcome], op.String())
			}
		}
	}
	var keys []string
	for o, ops := range bad {
		keys = append(keys, fmt.Sprintf("%s:\n    %s", o, strings.Join(ops, "\n    ")))
	}
	sort.Strings(keys)
	assert.Empty(t, keys, "writes failed with outcomes other than %v", allowed)
}

// logFailures prints a summary of the failures by kind and outcome, and
// the first of each.
func logFailures(t *testing.T, rep *checker.Report) {
	_, kinds := failuresOutside(rep)
	t.Logf("failures by op:outcome: %v", kinds)
	seen := map[string]bool{}
	for _, op := range rep.Failures {
		k := op.Kind.String() + ":" + op.Outcome.String()
		if !seen[k] {
			seen[k] = true
			t.Logf("  first %s: %s", k, op.String())
		}
	}
}

// knownBug fails the test with the cases of a misbehaviour of the root
// package that the fault suite once found (each fixed since; the check
// stays, as a regression test).
func knownBug(t *testing.T, what string, cases []string) {
	t.Helper()
	if len(cases) == 0 {
		return
	}
	shown := cases[:min(len(cases), 5)]
	t.Errorf("regression: %s (%d cases):\n    %s", what, len(cases), strings.Join(shown, "\n    "))
}
