package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is one PostgreSQL server of a cluster.
type Server struct {
	// Name is "primary" or "replicaN".
	Name string

	cluster *Cluster
	dataDir string

	mu     sync.Mutex
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// DSN is a pgx/lib/pq connection URL for the server.
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port())
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// Addr is the server's "127.0.0.1:port", e.g. for ReplicateFrom or a
// proxy's upstream.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port())) }

// DataDir is the server's data directory.
func (s *Server) DataDir() string { return s.dataDir }

func (s *Server) logPath() string { return s.dataDir + ".log" }

// start launches the postmaster on port (0 = a free one) and waits until it
// accepts connections. A free port can be taken by another process between
// our probe and the server's bind, so with port 0 a failed bind is retried on
// a new port.
func (s *Server) start(ctx context.Context, port int) error {
	attempts := 1
	if port == 0 {
		attempts = 5
	}
	var err error
	for range attempts {
		p := port
		if p == 0 {
			if p, err = freePort(); err != nil {
				return err
			}
		}
		if err = s.launch(ctx, p); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

func (s *Server) launch(ctx context.Context, port int) error {
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	defer logf.Close()
	cmd := s.cluster.command(filepath.Join(s.cluster.bin, "postgres"),
		"-D", s.dataDir, "-p", fmt.Sprint(port), "-c", "unix_socket_directories="+s.cluster.dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgcluster: start %s: %w", s.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.port, s.cmd, s.exited = port, cmd, exited
	s.mu.Unlock()

	if err := s.waitAccepting(ctx, exited); err != nil {
		_ = s.Stop()
		return fmt.Errorf("pgcluster: %s on port %d: %w\n%s", s.Name, port, err, tail(s.logPath(), 20))
	}
	return nil
}

// waitAccepting polls until the server answers a query. PostgreSQL offers
// no readiness event a client can subscribe to, so a short connect loop is
// the await.
func (s *Server) waitAccepting(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, s.DSN())
		if err == nil {
			err = conn.Ping(cctx)
			_ = conn.Close(context.Background())
		}
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("server exited during start")
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// PID is the postmaster's process id while it runs, else 0. Its backends
// are its children (each in a session of its own).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	select {
	case <-s.exited:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// Version is the server's PostgreSQL version (the cluster's).
func (s *Server) Version() Version { return s.cluster.version }

// Stop shuts the server down cleanly (fast shutdown), escalating to SIGKILL
// after 10 s. Stopping a stopped server is a no-op.
func (s *Server) Stop() error { return s.signalAndWait(syscall.SIGINT) }

// Kill ends the server like a crash: an immediate shutdown (SIGQUIT) with no
// checkpoint, so Restart goes through crash recovery. The postmaster still
// tells its backends and replicas' senders to quit; Crash does not.
func (s *Server) Kill() error { return s.signalAndWait(syscall.SIGQUIT) }

// Crash SIGKILLs the postmaster and every process it started (backends,
// WAL senders and receivers, background workers) at once, as an OOM kill
// or a lost machine would: no process gets to say goodbye, clients see
// their connections reset, and the next Start goes through crash recovery.
// With fsync off, committed data survives (the OS still has it); it is a
// process crash, not a power loss.
func (s *Server) Crash() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	// Every child calls setsid(), so the postmaster's process group is just
	// itself: find the children by parent. Stopped, it forks no new ones
	// while we look.
	pid := cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	kids := children(pid)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	_ = cmd.Process.Kill()
	<-exited
	// Orphans are reaped by init; wait until none runs, so that whatever
	// the caller does next meets a server that is wholly gone.
	deadline := time.Now().Add(10 * time.Second)
	for _, k := range kids {
		for running(k) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pgcluster: %s: process %d survived SIGKILL", s.Name, k)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// Start starts a stopped server again on the port it had, as it was
// configured (a replica resumes streaming). Starting a running server is a
// no-op.
func (s *Server) Start(ctx context.Context) error {
	if s.Running() {
		return nil
	}
	return s.start(ctx, s.Port())
}

func (s *Server) signalAndWait(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("pgcluster: %s did not stop on %v; killed", s.Name, sig)
}

// Restart stops the server if it runs and starts it again on the same port.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx, s.Port())
}

// QueryString runs a query on a fresh connection and returns the first
// column of the first row as text ("" for NULL).
func (s *Server) QueryString(ctx context.Context, query string, args ...any) (string, error) {
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return "", fmt.Errorf("pgcluster: connect %s: %w", s.Name, err)
	}
	defer conn.Close(context.Background())
	var out *string
	if err := conn.QueryRow(ctx, query, args...).Scan(&out); err != nil {
		return "", fmt.Errorf("pgcluster: %s: %q: %w", s.Name, query, err)
	}
	if out == nil {
		return "", nil
	}
	return *out, nil
}

// Exec runs statements on a fresh connection.
func (s *Server) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return fmt.Errorf("pgcluster: connect %s: %w", s.Name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("pgcluster: %s: %w", s.Name, err)
	}
	return nil
}

// poll runs query until it returns "t", sleeping briefly between tries.
func (s *Server) poll(ctx context.Context, what, query string, args ...any) error {
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return fmt.Errorf("pgcluster: connect %s: %w", s.Name, err)
	}
	defer conn.Close(context.Background())
	for {
		var ok bool
		if err := conn.QueryRow(ctx, query, args...).Scan(&ok); err != nil {
			return fmt.Errorf("pgcluster: %s: waiting for %s: %w", s.Name, what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: %s: waiting for %s: %w", s.Name, what, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// WaitStreaming waits until a replica's walreceiver is streaming.
func (s *Server) WaitStreaming(ctx context.Context) error {
	return s.poll(ctx, "streaming replication",
		"SELECT coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false)")
}

// WaitReplayed waits until a replica has replayed WAL up to lsn ("X/X").
//
// A position just past a WAL page header (what pg_current_wal_insert_lsn()
// reports when the last record ended exactly on a page boundary) is never
// reported by replay until some later record arrives, so such a target is
// moved back to the boundary — nothing can end inside a header.
func (s *Server) WaitReplayed(ctx context.Context, lsn string) error {
	return s.poll(ctx, "replay of "+lsn, `
		WITH t AS (SELECT $1::text::pg_lsn AS target,
		                  ($1::text::pg_lsn - '0/0'::pg_lsn) AS pos)
		SELECT coalesce(pg_last_wal_replay_lsn() >= CASE
		         WHEN pos % current_setting('wal_block_size')::numeric = 24 THEN target - 24
		         WHEN pos % pg_size_bytes(current_setting('wal_segment_size')) = 40 THEN target - 40
		         ELSE target END, false)
		FROM t`, lsn)
}

// PauseReplay pauses WAL replay on a replica and waits until it has paused:
// WAL keeps arriving but nothing new becomes visible.
func (s *Server) PauseReplay(ctx context.Context) error {
	if err := s.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		return err
	}
	return s.poll(ctx, "replay pause", "SELECT pg_get_wal_replay_pause_state() = 'paused'")
}

// ResumeReplay resumes WAL replay on a replica.
func (s *Server) ResumeReplay(ctx context.Context) error {
	return s.Exec(ctx, "SELECT pg_wal_replay_resume()")
}

// Promote turns a replica into a primary and waits for the promotion.
func (s *Server) Promote(ctx context.Context) error {
	out, err := s.QueryString(ctx, "SELECT pg_promote(true, 60)::text")
	if err != nil {
		return err
	}
	if out != "true" {
		return fmt.Errorf("pgcluster: %s: promotion did not complete", s.Name)
	}
	return nil
}

// ReplicateFrom points a replica's WAL receiver at addr ("host:port", e.g.
// a latency proxy in front of the primary) and waits until it streams from
// there. PostgreSQL restarts the receiver on reload; until then the old one
// may still be streaming, so the wait checks the sender's port.
func (s *Server) ReplicateFrom(ctx context.Context, addr string) error {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("pgcluster: %s: replicate from %q: %w", s.Name, addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("pgcluster: %s: replicate from %q: %w", s.Name, addr, err)
	}
	info := fmt.Sprintf("host=%s port=%d user=postgres sslmode=disable application_name=%s", host, port, s.Name)
	if err := s.Exec(ctx, fmt.Sprintf("ALTER SYSTEM SET primary_conninfo = '%s'", info)); err != nil {
		return err
	}
	if err := s.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	return s.poll(ctx, "streaming from "+addr, `SELECT coalesce((SELECT status = 'streaming' AND sender_port = $1
		FROM pg_stat_wal_receiver), false)`, port)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
