package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const (
	dirPrefix = "flypg-pg-"
	ownerFile = "owner.pid"
)

// osUser is the account the servers run as: the postgres user when we are
// root (PostgreSQL refuses to run as root), else nil for ourselves.
type osUser struct {
	uid, gid uint32
}

func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root needs the postgres OS user "+
			"(created by `apt-get install postgresql`): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgcluster: postgres user: %w", err)
	}
	return &osUser{uid: uint32(uid), gid: uint32(gid)}, nil
}

func (u *osUser) chown(path string) error {
	if u == nil {
		return nil
	}
	if err := os.Chown(path, int(u.uid), int(u.gid)); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// command builds a command that runs as the server user and dies with us:
// Pdeathsig makes a test binary killed by a timeout take its servers along.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if c.user != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.user.uid, Gid: c.user.gid}
		cmd.Env = append(cmd.Env, "HOME="+c.dir)
	}
	return cmd
}

// run runs one of the cluster's helper programs to completion.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) error {
	_, err := c.output(ctx, prog, args...)
	return err
}

// output runs one of the cluster's programs to completion and returns what
// it printed (stdout and stderr); a failure's error includes that output.
func (c *Cluster) output(ctx context.Context, prog string, args ...string) (string, error) {
	cmd := c.command(filepath.Join(c.bin, prog), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("pgcluster: %s: %w", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("pgcluster: %s %s%s: %w\n%s", cmd.Path, strings.Join(args, " "), c.asUser(), err, out.String())
		}
		return out.String(), nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("pgcluster: %s: %w", prog, ctx.Err())
	}
}

// asUser names the OS user programs run as, when it is not ourselves: a
// permission error is otherwise puzzling.
func (c *Cluster) asUser() string {
	if c.user == nil {
		return ""
	}
	return " (as the postgres OS user)"
}

// live holds the running clusters so that an interrupt can stop them. The
// signal handler exists only while a cluster runs, so a test process that
// stopped its clusters has no extra goroutine (goleak stays quiet).
var live struct {
	sync.Mutex
	clusters map[*Cluster]struct{}
	sigs     chan os.Signal
	done     chan struct{}
}

func register(c *Cluster, signals bool) {
	live.Lock()
	defer live.Unlock()
	if !signals {
		return
	}
	if live.clusters == nil {
		live.clusters = map[*Cluster]struct{}{}
	}
	live.clusters[c] = struct{}{}
	if live.sigs == nil {
		live.sigs = make(chan os.Signal, 1)
		live.done = make(chan struct{})
		signal.Notify(live.sigs, os.Interrupt, syscall.SIGTERM)
		go onSignal(live.sigs, live.done)
	}
}

func unregister(c *Cluster) {
	live.Lock()
	defer live.Unlock()
	if _, ok := live.clusters[c]; !ok {
		return
	}
	delete(live.clusters, c)
	if len(live.clusters) == 0 && live.sigs != nil {
		signal.Stop(live.sigs)
		close(live.done)
		live.sigs, live.done = nil, nil
	}
}

func onSignal(sigs <-chan os.Signal, done <-chan struct{}) {
	select {
	case <-done:
	case sig := <-sigs:
		live.Lock()
		all := make([]*Cluster, 0, len(live.clusters))
		for c := range live.clusters {
			all = append(all, c)
		}
		live.Unlock()
		for _, c := range all {
			_ = c.Stop()
		}
		code := 1
		if s, ok := sig.(syscall.Signal); ok {
			code = 128 + int(s)
		}
		os.Exit(code)
	}
}

// sweepStale removes cluster directories whose owning process is gone (it
// was killed before it could clean up). Their servers died with it
// (Pdeathsig), so only files remain.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(baseDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being created right now, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// baseDir is where cluster directories go: $FLYPG_PG_TMPDIR, else /dev/shm
// when it is a writable tmpfs (initdb and pg_basebackup write ~30 MB each,
// which takes seconds on a slow virtual disk and milliseconds in memory),
// else the system temp dir.
func baseDir() string {
	if dir := os.Getenv("FLYPG_PG_TMPDIR"); dir != "" {
		return dir
	}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() && syscall.Access("/dev/shm", 0o7) == nil {
		return "/dev/shm"
	}
	return os.TempDir()
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// children lists the processes whose parent is pid, from /proc.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, path := range stats {
		if ppid, state, ok := procStat(path); ok && ppid == pid && state != 'Z' {
			if k, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	_, state, ok := procStat(fmt.Sprintf("/proc/%d/stat", pid))
	return ok && state != 'Z'
}

// procStat reads the parent and state from /proc/<pid>/stat: "pid (comm)
// state ppid …", where comm may hold spaces and parentheses.
func procStat(path string) (ppid int, state byte, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0][0], err == nil
}
