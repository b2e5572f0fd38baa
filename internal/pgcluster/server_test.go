package pgcluster_test

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
)

func TestKillRestartPromote(t *testing.T) {
	ctx := ctxFor(t)
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 2})
	require.Len(t, c.Replicas, 2)
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int)"))

	r := c.Replicas[0]
	port := r.Port()
	require.NoError(t, r.Kill())
	assert.False(t, r.Running())
	_, err := r.QueryString(ctx, "SELECT 1")
	assert.Error(t, err, "killed server answers")

	require.NoError(t, r.Restart(ctx))
	assert.Equal(t, port, r.Port(), "restart keeps the port")
	require.NoError(t, r.WaitStreaming(ctx))
	require.NoError(t, c.Sync(ctx))

	p := c.Replicas[1]
	require.NoError(t, p.Promote(ctx))
	assert.Equal(t, "false", query(t, p, "SELECT pg_is_in_recovery()::text"))
	require.NoError(t, p.Exec(ctx, "INSERT INTO t VALUES (1)"), "promoted replica accepts writes")
}

// TestStopStart: PID is the postmaster's; a stopped replica is left out of
// Sync, starts again on its port and catches up; Start of a running server
// does nothing.
func TestStopStart(t *testing.T) {
	ctx := ctxFor(t)
	c := pgcluster.ForTest(t, pgcluster.Options{})
	r := c.Replicas[0]
	port, pid := r.Port(), r.PID()
	require.NotZero(t, pid)
	checkpointer := atoi(t, query(t, r, "SELECT pid::text FROM pg_stat_activity WHERE backend_type = 'checkpointer'"))
	ppid, _ := procStat(t, checkpointer)
	assert.Equal(t, pid, ppid, "PID is the postmaster, the parent of the server's processes")
	require.NoError(t, c.Primary.Exec(ctx, "CREATE TABLE t (id int)"))

	require.NoError(t, r.Stop())
	assert.False(t, r.Running())
	assert.Zero(t, r.PID())
	target := insertLSN(t, c.Primary, "t", 1)
	require.NoError(t, c.Sync(ctx), "Sync skips a stopped replica")

	require.NoError(t, r.Start(ctx))
	assert.True(t, r.Running())
	assert.Equal(t, port, r.Port())
	assert.NotEqual(t, pid, r.PID())
	require.NoError(t, r.WaitReplayed(ctx, target), "catches up after the restart")
	assert.Equal(t, "1", query(t, r, "SELECT count(*)::text FROM t"))

	pid = r.PID()
	require.NoError(t, r.Start(ctx))
	assert.Equal(t, pid, r.PID(), "Start of a running server is a no-op")
}

// TestCrash: Crash SIGKILLs the postmaster and all its backends at once;
// what was committed survives crash recovery, and replication resumes.
func TestCrash(t *testing.T) {
	ctx := ctxFor(t)
	c := pgcluster.ForTest(t, pgcluster.Options{})
	p := c.Primary
	require.NoError(t, p.Exec(ctx, "CREATE TABLE t (id int)"))
	insertLSN(t, p, "t", 1)
	conn, err := pgx.Connect(ctx, p.DSN())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var backend int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend), "a backend the crash must take along")
	var checkpointer int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").Scan(&checkpointer))
	require.True(t, alive(t, backend))

	pid := p.PID()
	require.NoError(t, p.Crash())
	assert.False(t, p.Running())
	assert.False(t, alive(t, pid), "postmaster")
	assert.False(t, alive(t, backend), "backend")
	assert.False(t, alive(t, checkpointer), "checkpointer: a clean shutdown's last step, so it must not have run")
	_, err = conn.Exec(ctx, "SELECT 1")
	assert.Error(t, err, "a connection to a crashed server")

	require.NoError(t, p.Start(ctx))
	assert.Equal(t, "1", query(t, p, "SELECT count(*)::text FROM t"), "committed row after crash recovery")
	log, err := os.ReadFile(p.DataDir() + ".log")
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(log), "not properly shut down"), "crash recovery ran:\n%s", log)

	r := c.Replicas[0]
	require.NoError(t, r.WaitStreaming(ctx))
	require.NoError(t, c.Sync(ctx))
	require.NoError(t, r.Crash())
	require.NoError(t, r.Start(ctx))
	require.NoError(t, r.WaitStreaming(ctx))
	target := insertLSN(t, p, "t", 2)
	require.NoError(t, r.WaitReplayed(ctx, target))
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// procStat is a process's parent and state from /proc; 0, 0 if it is gone.
func procStat(t testing.TB, pid int) (ppid int, state byte) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	require.GreaterOrEqual(t, len(fields), 2)
	return atoi(t, fields[1]), fields[0][0]
}

func alive(t testing.TB, pid int) bool {
	_, state := procStat(t, pid)
	return state != 0 && state != 'Z'
}
