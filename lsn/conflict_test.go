package lsn_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/migrate"
)

// Waiting must not hold a snapshot on the replica. A snapshot held across a
// wait conflicts with replaying a VACUUM or HOT-prune record of rows that
// changed meanwhile: replay stops until the snapshot goes away, delaying
// every reader of the replica (or, with a small max_standby_streaming_delay,
// the holder is cancelled). The server-side wait function of migration 0001
// held one for each call of up to 50 ms, so resuming replay under a waiter
// stalled it nearly every time. The function is installed (as an older
// flypg's migrate.Up left it) to show that the tracker no longer uses it even
// where it exists.
//
// The replica logs every recovery-conflict wait longer than
// deadlock_timeout (log_recovery_conflict_waits); 10 ms is far above what a
// poll holds its snapshot for (microseconds) and well inside the 50 ms of a
// wait-function call.
func TestWaitHoldsNoSnapshotAcrossReplay(t *testing.T) {
	ctx := testCtx(t)
	c := pgcluster.ForTest(t, pgcluster.Options{Settings: map[string]string{
		// Feedback would make the primary keep the rows the replica's
		// snapshots need; the PostgreSQL default is off.
		"hot_standby_feedback":        "off",
		"max_standby_streaming_delay": "-1", // wait, never cancel: the stall is what is measured
		"log_recovery_conflict_waits": "on",
		"deadlock_timeout":            "'10ms'",
	}})
	db, err := sql.Open("pgx", c.Primary.DSN())
	require.NoError(t, err)
	defer db.Close()
	body, err := migrate.FS.ReadFile("sql/0001_wait_for_lsn.up.sql")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, string(body))
	require.NoError(t, err)
	primary := connect(t, ctx, c.Primary.DSN())
	_, err = primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off)")
	require.NoError(t, err)
	_, err = primary.Exec(ctx, "INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g")
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx))

	replica := c.Replicas[0]
	tr := newTracker(t, lsn.Config{DSN: replica.DSN()})
	require.NoError(t, tr.Wait(ctx, commit(t, ctx, primary, "UPDATE t SET v = 1")), "connected")

	const rounds = 5
	for round := range rounds {
		require.NoError(t, replica.PauseReplay(ctx))
		// Dead row versions, then a VACUUM that removes them: its records
		// conflict with any replica snapshot older than the UPDATE.
		commit(t, ctx, primary, "UPDATE t SET v = v + 1")
		commit(t, ctx, primary, "VACUUM t")
		target := commit(t, ctx, primary, "INSERT INTO t VALUES ($1, 0)", 1000+round)

		result := make(chan error, 1)
		go func() { result <- tr.Wait(ctx, target) }()
		require.Eventually(t, waiters(tr, 1), 10*time.Second, time.Millisecond)
		// Let the tracker settle into its long-wait mode (the old wait
		// function took over after 8 ms) before replay resumes.
		polls := tr.Stats().Polls
		require.Eventually(t, func() bool { return tr.Stats().Polls >= polls+3 }, 10*time.Second, time.Millisecond)
		resumed := time.Now()
		require.NoError(t, replica.ResumeReplay(ctx))
		require.NoError(t, <-result)
		t.Logf("round %d: resume → Wait returned in %v", round, time.Since(resumed))
	}

	var stalls []string
	for line := range strings.Lines(c.Logs()) {
		if strings.Contains(line, "recovery still waiting") || strings.Contains(line, "recovery finished waiting") {
			stalls = append(stalls, strings.TrimSpace(line))
		}
	}
	assert.Empty(t, stalls, "replay waited for a snapshot held on the replica")
	assert.Zero(t, tr.Stats().PollErrors, "no tracker query failed")
}
