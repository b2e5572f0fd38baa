package flypg_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
)

// Some promises are about a fresh process configured only by its
// environment, as users deploy: sql.Open("flypg", os.Getenv("DATABASE_URL"))
// with no Start. A test runs such a scenario in a child process (this test
// binary, re-executed) and reads back what it saw.

const childEnv = "FLYPG_TEST_CHILD"

// childResult is what a child reports, as JSON on stdout.
type childResult struct {
	OpenErr    string `json:"open_err,omitempty"`
	PortFree   bool   `json:"port_free"`
	InRecovery bool   `json:"in_recovery"`
	SawWrite   bool   `json:"saw_write"`
	Err        string `json:"err,omitempty"`
	Forwarded  int64  `json:"forwarded"`
}

// runChild runs one scenario and prints its result.
func runChild(name string) int {
	var res childResult
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scenarios := map[string]func(context.Context, *childResult){
		"open-and-use": childOpenAndUse,
		"open-no-io":   childOpenNoIO,
	}
	f := scenarios[name]
	if f == nil {
		fmt.Fprintln(os.Stderr, "unknown child scenario", name)
		return 2
	}
	f(ctx, &res)
	_ = json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// childOpenAndUse: the README's one line, in a replica region.
func childOpenAndUse(ctx context.Context, res *childResult) {
	db, err := sql.Open("flypg", os.Getenv("DATABASE_URL"))
	if err != nil {
		res.OpenErr = err.Error()
		return
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&res.InRecovery); err != nil {
		res.Err = err.Error()
		return
	}
	var id int64
	if err := db.QueryRowContext(ctx, "INSERT INTO child_rows (v) VALUES ('from the child') RETURNING id").Scan(&id); err != nil {
		res.Err = err.Error()
		return
	}
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM child_rows WHERE id = $1)", id).Scan(&res.SawWrite); err != nil {
		res.Err = err.Error()
	}
}

// childOpenNoIO: sql.Open with servers down binds nothing and fails
// nothing; the first use reports the problem.
func childOpenNoIO(ctx context.Context, res *childResult) {
	db, err := sql.Open("flypg", os.Getenv("DATABASE_URL"))
	if err != nil {
		res.OpenErr = err.Error()
		return
	}
	defer db.Close()
	if ln, err := net.Listen("tcp", os.Getenv("FLYPG_RPC_ADDR")); err == nil {
		res.PortFree = true
		ln.Close()
	}
	err = db.PingContext(ctx)
	if err == nil {
		err = db.QueryRowContext(ctx, "SELECT 1").Scan(new(int))
	}
	if err != nil {
		res.Err = err.Error()
	}
}

// child runs scenario name in a child process with env (on top of a
// cleaned environment) and returns its result.
func child(t *testing.T, name string, env map[string]string) childResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{childEnv + "=" + name, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "child %s: %s", name, errOut.String())
	var res childResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), "child %s printed %q (stderr %s)", name, out.String(), errOut.String())
	return res
}

// freeAddr returns a loopback address nobody listens on (as far as anyone
// can know).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

var _ = flypg.DriverName
