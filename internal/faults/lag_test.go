package faults

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
	"github.com/flypg/flypg/internal/pgcluster"
)

// Fault 3: lax's replica stops replaying (WAL still arrives). Writes
// commit on the primary and return *AwaitError after AwaitTimeout, with
// the row there; once replay resumes, lax's reads see every one of them.
func TestReplayPaused(t *testing.T) {
	e := newEnv(t, pgcluster.Options{})
	const awaitTimeout = 300 * time.Millisecond
	syd := e.node("syd-1", "syd", e.c.Primary.DSN(), nil, nil)
	lax := e.node("lax-1", "lax", e.c.Replicas[0].DSN(), []string{syd.GossipAddr()}, func(c *flypg.Config) { c.AwaitTimeout = awaitTimeout })
	e.ready(lax)
	db := e.openDB(lax, 32)

	l, err := checker.Start(e.ctx, checker.Config{DBs: []*checker.Target{checker.NewTarget("lax", "lax", db, lax)},
		Primary: e.primary, Clients: pick(8, 32), Duration: 5 * time.Minute, OpTimeout: 3 * time.Second})
	require.NoError(t, err)
	defer l.Stop()
	require.NoError(t, l.WaitOK(e.ctx, 100))

	pausedAt := l.Now()
	require.NoError(t, e.c.Replicas[0].PauseReplay(e.ctx))
	// Committed, not replayed: wait for a good number of them.
	before := lax.Stats().AwaitTimeouts
	deadline := time.Now().Add(30 * time.Second)
	for lax.Stats().AwaitTimeouts < before+int64(pick(40, 400)) {
		require.True(t, time.Now().Before(deadline), "writes return *AwaitError while replay is paused")
		time.Sleep(20 * time.Millisecond) // polling a counter; there is no event to wait on
	}
	resumedAt := l.Now()
	require.NoError(t, e.c.Replicas[0].ResumeReplay(e.ctx))
	require.NoError(t, l.WaitOK(e.ctx, 100), "writes are awaited again")
	rep := e.finish(l, nil)
	logFailures(t, rep)

	// Every *AwaitError came after AwaitTimeout (not before, not much
	// later), while replay was paused.
	timeouts := rep.Filter(func(op *checker.Op) bool { return op.Outcome == checker.AwaitTimeout })
	require.NotEmpty(t, timeouts)
	for _, op := range timeouts {
		assert.GreaterOrEqual(t, op.Took(), awaitTimeout, "waited AwaitTimeout: %s", op.String())
		assert.Less(t, op.Took(), awaitTimeout+time.Second, "and no longer: %s", op.String())
		assert.True(t, op.End >= pausedAt && op.Start <= resumedAt+awaitTimeout, "while paused: %s", op.String())
	}
	assertWriteOutcomes(t, rep, checker.AwaitTimeout)
	assert.Zero(t, len(rep.Failures)-len(timeouts), "nothing but *AwaitError failed")
	first, _ := rep.FirstOK(resumedAt, nil)
	t.Logf("%d writes returned *AwaitError during the pause; first awaited write %v after the resume",
		len(timeouts), (first - resumedAt).Round(time.Millisecond))

	// Every one of them is on the primary (the checker verified it) and,
	// now that replay resumed, visible on lax: one awaited write through
	// lax, and lax's replica has replayed everything before it.
	_, err = db.ExecContext(e.ctx, fmt.Sprintf("INSERT INTO %s (run, client, seq, idx, op) VALUES ($1, -1, 1, 0, 'sync')", checker.DefaultTable), rep.Run)
	require.NoError(t, err, "an awaited write")
	for _, op := range timeouts {
		var n int
		require.NoError(t, db.QueryRowContext(e.ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE run = $1 AND client = $2 AND seq = $3", checker.DefaultTable),
			rep.Run, op.Client, op.Seq).Scan(&n))
		assert.Equal(t, op.Rows, n, "lax sees the write that returned *AwaitError: %s", op.String())
	}
	var rec bool
	require.NoError(t, db.QueryRowContext(e.ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.True(t, rec, "those reads ran on lax's replica")
}
