package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds an app's start: build cache warm, it takes a second.
	readyTimeout = 30 * time.Second
	// stopTimeout is how long an app may take to shut down gracefully
	// (finish requests, leave the cluster) before it is killed.
	stopTimeout = 5 * time.Second
)

// app is one process of the example app (examples/todo) in one region.
type app struct {
	region string
	url    string   // http://host:port
	env    []string // what the lab set, for `up` to print
	pid    int
	logs   *logSink

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	err    error         // cmd.Wait's result, set before exited closes
}

// appBinary builds examples/todo into a fresh temporary directory; remove
// deletes it. A running executable does not need its file: callers remove
// it as soon as the apps have started, so that nothing is left behind
// however the lab ends.
func appBinary(ctx context.Context) (bin string, remove func(), err error) {
	progress("building examples/todo...")
	dir, err := os.MkdirTemp("", "flypg-lab-")
	if err != nil {
		return "", nil, fmt.Errorf("temp dir for the app binary: %w", err)
	}
	remove = func() { _ = os.RemoveAll(dir) }
	bin = filepath.Join(dir, "todo")
	if err := buildApp(ctx, bin); err != nil {
		remove()
		return "", nil, err
	}
	return bin, remove, nil
}

// startApps runs the example app (bin, from appBinary) once per region: in
// syd on the primary, in lax and ams on their replicas. The replica regions
// reach syd's write link through a WAN proxy. Every app gets the primary's
// URL as DATABASE_URL, as on Fly.io; the replica regions also get FLYPG_DSN,
// since their replicas are not where Fly.io's naming would put them.
// logOut receives the apps' log lines (nil: kept only for errors).
func (l *lab) startApps(ctx context.Context, bin string, logOut io.Writer) (err error) {
	addrs := map[string]string{}
	for _, r := range []string{"syd", "lax", "ams"} {
		for _, k := range []string{"-http", "-gossip", "-rpc"} {
			if addrs[r+k], err = freeAddr(); err != nil {
				return err
			}
		}
	}
	sydLink, err := l.wan.Proxy(ctx, "app-link", addrs["syd-rpc"])
	if err != nil {
		return fmt.Errorf("WAN proxy for the write link: %w", err)
	}
	common := []string{
		"DATABASE_URL=" + l.pg.Primary.DSN(),
		"PRIMARY_REGION=syd",
		"FLYPG_SECRET=" + l.secret,
		"FLYPG_GOSSIP_PROFILE=local",
	}

	progress("starting the app in syd (primary region)...")
	syd, err := l.startApp(ctx, bin, "syd", addrs["syd-http"], logOut, append([]string{
		"FLY_REGION=syd",
		"FLYPG_NODE_NAME=syd-1",
		"FLYPG_GOSSIP_ADDR=" + addrs["syd-gossip"],
		"FLYPG_RPC_ADDR=" + addrs["syd-rpc"],
		"FLYPG_ADVERTISE_RPC_ADDR=" + sydLink,
	}, common...))
	if err != nil {
		return err
	}
	// syd created the table; the other regions must find it replayed (they
	// never run DDL).
	if err := l.pg.Sync(ctx); err != nil {
		return fmt.Errorf("wait for the schema to replicate: %w", err)
	}
	for _, r := range []struct {
		region string
		dsn    string
	}{{"lax", l.laxPG().DSN()}, {"ams", l.amsPG().DSN()}} {
		progress(fmt.Sprintf("starting the app in %s (replica region)...", r.region))
		if _, err := l.startApp(ctx, bin, r.region, addrs[r.region+"-http"], logOut, append([]string{
			"FLY_REGION=" + r.region,
			// flypg would derive top1.nearest.of.<host>:5433 from
			// DATABASE_URL, Fly.io's layout; here the replica is
			// elsewhere, so name it.
			"FLYPG_DSN=" + r.dsn,
			"FLYPG_NODE_NAME=" + r.region + "-1",
			"FLYPG_GOSSIP_ADDR=" + addrs[r.region+"-gossip"],
			"FLYPG_RPC_ADDR=" + addrs[r.region+"-rpc"],
			"FLYPG_JOIN=" + syd.envValue("FLYPG_GOSSIP_ADDR"),
		}, common...)); err != nil {
			return err
		}
	}
	return nil
}

// app returns the app running in region (startApps made one per region).
func (l *lab) app(region string) *app {
	for _, a := range l.apps {
		if a.region == region {
			return a
		}
	}
	panic("flypg-lab: no app in region " + region)
}

// buildApp compiles examples/todo from the module the lab runs in.
func buildApp(ctx context.Context, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the lab builds examples/todo and needs the go command: %w", err)
	}
	root, err := moduleRoot(ctx, goBin)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./examples/todo")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./examples/todo: %w\n%s", err, msg)
	}
	return nil
}

// moduleRoot is the flypg module's directory, found from the working
// directory: the lab runs from a clone (`go run ./cmd/flypg-lab`).
func moduleRoot(ctx context.Context, goBin string) (string, error) {
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	root := filepath.Dir(gomod)
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run flypg-lab from the flypg repository (go run ./cmd/flypg-lab): it builds ./examples/todo")
	}
	if _, err := os.Stat(filepath.Join(root, "examples", "todo", "main.go")); err != nil {
		return "", fmt.Errorf("run flypg-lab from the flypg repository (go run ./cmd/flypg-lab): %s has no examples/todo: %w", root, err)
	}
	return root, nil
}

// startApp starts one app process and waits until it is ready.
func (l *lab) startApp(ctx context.Context, bin, region, httpAddr string, logOut io.Writer, env []string) (*app, error) {
	env = append(env, "LISTEN_ADDR="+httpAddr)
	a := &app{
		region: region,
		url:    "http://" + httpAddr,
		env:    env,
		logs:   &logSink{prefix: region + " | ", out: logOut},
		exited: make(chan struct{}),
	}
	cmd := exec.Command(bin)
	cmd.Env = append(cleanEnv(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr = a.logs, a.logs
	// Its own process group: a ^C in the terminal reaches the lab only, which
	// stops the apps in order. Pdeathsig: if the lab dies, so do they.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the %s app: %w", region, err)
	}
	a.cmd, a.pid = cmd, cmd.Process.Pid
	go func() { a.err = cmd.Wait(); close(a.exited) }()
	l.apps = append(l.apps, a)
	if err := a.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("the %s app: %w\n%s", region, err, a.logs.tail())
	}
	return a, nil
}

// cleanEnv drops the variables the apps are configured by, so that a
// DATABASE_URL or FLY_REGION in the user's shell cannot leak into the lab.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "FLYPG_") && k != "FLYPG_PG_BIN",
			strings.HasPrefix(k, "FLY_"),
			k == "PRIMARY_REGION", k == "DATABASE_URL", k == "PORT", k == "LISTEN_ADDR":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (a *app) envValue(key string) string {
	for _, kv := range a.env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// waitReady polls GET /healthz until the app says ready. The app offers no
// readiness event to subscribe to; a health endpoint polled by a deadline is
// how platforms wait for it too.
func (a *app) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		var h struct {
			Ready bool `json:"ready"`
		}
		status, err := a.do(ctx, "GET", "/healthz", nil, &h)
		switch {
		case err == nil && h.Ready:
			return nil
		case err == nil:
			last = fmt.Errorf("GET /healthz: %d, not ready", status)
		default:
			last = err
		}
		select {
		case <-a.exited:
			return fmt.Errorf("exited during start: %v", a.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", readyTimeout, last)
		case <-tick.C:
		}
	}
}

// httpClient keeps connections to the apps alive between requests, as a
// load balancer would, so that a timed request is one HTTP exchange.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends a JSON request and decodes the JSON answer into out (if not nil).
func (a *app) do(ctx context.Context, method, path string, body, out any) (int, error) {
	status, _, err := a.doWith(ctx, method, path, nil, body, out)
	return status, err
}

// doWith is do with request headers; it also returns the response's.
func (a *app) doWith(ctx context.Context, method, path string, h http.Header, body, out any) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: decode %q: %w", method, path, data, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// stop asks the app to shut down (SIGTERM) and kills it if it has not
// within stopTimeout.
func (a *app) stop() error {
	select {
	case <-a.exited:
		return nil // already gone; its exit was reported where it mattered
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = a.cmd.Process.Kill()
		<-a.exited
		return fmt.Errorf("the %s app did not stop within %v; killed", a.region, stopTimeout)
	}
}

// logSink takes an app's output: it forwards whole lines, prefixed, to out
// (if any) and keeps the last ones for error messages.
type logSink struct {
	prefix string
	out    io.Writer

	mu    sync.Mutex
	part  []byte
	lines []string
}

const keepLines = 40

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.part = append(s.part, p...)
	for {
		i := bytes.IndexByte(s.part, '\n')
		if i < 0 {
			break
		}
		line := s.prefix + string(s.part[:i])
		s.part = s.part[i+1:]
		if s.out != nil {
			fmt.Fprintln(s.out, line)
		}
		s.lines = append(s.lines, line)
		if len(s.lines) > keepLines {
			s.lines = s.lines[len(s.lines)-keepLines:]
		}
	}
	return len(p), nil
}

func (s *logSink) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}
