package flypg_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
)

// eventually retries f until it succeeds or d passes, returning how long
// the first success took.
func eventually(t *testing.T, d time.Duration, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < d {
		if err = f(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err, "still failing after %v", d)
	return 0
}

// Failover without a redeploy: the primary dies and the replica in lax is
// promoted. lax's node sees its database become the primary and takes
// writes locally; syd's node, whose database is gone, forwards its writes
// and reads to lax — no restart, no config change.
func TestFailoverWithoutRestart(t *testing.T) {
	fast := func(cfg *flypg.Config) { cfg.RoleCheckInterval = 200 * time.Millisecond }
	c, syd, lax, ctx := twoRegions(t, fast, "CREATE TABLE fo (id bigserial PRIMARY KEY, src text)")
	sydDB, laxDB := syd.OpenDB(), lax.OpenDB()
	defer sydDB.Close()
	defer laxDB.Close()
	_, err := laxDB.ExecContext(ctx, "INSERT INTO fo (src) VALUES ('before')")
	require.NoError(t, err)

	require.NoError(t, c.Primary.Crash())
	require.NoError(t, c.Replicas[0].Promote(ctx))
	promoted := time.Now()

	write := func(db *sql.DB, src string) func() error {
		return func() error {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var id int64
			err := db.QueryRowContext(wctx, "INSERT INTO fo (src) VALUES ($1) RETURNING id", src).Scan(&id)
			var ae *flypg.AwaitError
			if errors.As(err, &ae) && errors.Is(err, flypg.ErrLocalUnavailable) && len(ae.Rows) == 1 {
				// syd's own database is gone: the write committed on the
				// new primary, and syd's reads go there too.
				id, err = ae.Rows[0][0].(int64), nil
			}
			if err != nil {
				return err
			}
			var ok bool
			if err := db.QueryRowContext(wctx, "SELECT EXISTS (SELECT 1 FROM fo WHERE id = $1)", id).Scan(&ok); err != nil || !ok {
				return errors.Join(err, errors.New("own write not visible"))
			}
			return nil
		}
	}
	var wg sync.WaitGroup
	var laxTook, sydTook time.Duration
	wg.Add(2)
	go func() { defer wg.Done(); laxTook = eventually(t, 30*time.Second, write(laxDB, "lax")) }()
	go func() { defer wg.Done(); sydTook = eventually(t, 30*time.Second, write(sydDB, "syd")) }()
	wg.Wait()
	t.Logf("first successful write after pg_promote: lax %v, syd %v (since promotion %v)", laxTook, sydTook, time.Since(promoted).Round(time.Millisecond))

	var rec bool
	require.NoError(t, laxDB.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec))
	assert.False(t, rec, "lax's database is the primary now")
	st := syd.Stats()
	assert.NotZero(t, st.Forwarded, "syd forwards to the new primary")
	var n int
	require.NoError(t, laxDB.QueryRowContext(ctx, "SELECT count(*) FROM fo WHERE src IN ('before', 'lax', 'syd')").Scan(&n))
	assert.GreaterOrEqual(t, n, 3)
}

// The local replica stops: reads go to the primary, writes keep
// committing (an *AwaitError says they could not be awaited locally), and
// when it is back both return to normal by themselves.
func TestLocalReplicaDown(t *testing.T) {
	fast := func(cfg *flypg.Config) { cfg.RoleCheckInterval = 200 * time.Millisecond }
	c, _, lax, ctx := twoRegions(t, fast, "CREATE TABLE rd (id bigserial PRIMARY KEY)")
	db := lax.OpenDB()
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM rd").Scan(&n))

	require.NoError(t, c.Replicas[0].Stop())
	eventually(t, 10*time.Second, func() error {
		var rec bool
		if err := db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			return err
		}
		if rec {
			return errors.New("still on the replica")
		}
		return nil
	})
	before := lax.Stats().PrimaryReads
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM rd").Scan(&n))
	assert.Greater(t, lax.Stats().PrimaryReads, before, "reads go to the primary")
	_, err := db.ExecContext(ctx, "INSERT INTO rd DEFAULT VALUES")
	var ae *flypg.AwaitError
	require.ErrorAs(t, err, &ae, "committed, not awaited: %v", err)
	assert.ErrorIs(t, ae, flypg.ErrLocalUnavailable)
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM rd").Scan(&n))
	assert.Equal(t, 1, n, "the write committed, and the read (on the primary) sees it")

	require.NoError(t, c.Replicas[0].Start(ctx))
	eventually(t, 20*time.Second, func() error {
		var rec bool
		if err := db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			return err
		}
		if !rec {
			return errors.New("not back on the replica yet")
		}
		return nil
	})
	_, err = db.ExecContext(ctx, "INSERT INTO rd DEFAULT VALUES")
	require.NoError(t, err, "writes are awaited again")
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM rd").Scan(&n))
	assert.Equal(t, 2, n)
}

// A node lives through many role checks while it serves, under the race
// detector (the role check once raced the node's start).
func TestRoleChecksUnderLoad(t *testing.T) {
	r := startRegions(t, func(cfg *flypg.Config) { cfg.RoleCheckInterval = 50 * time.Millisecond })
	r.exec(t, "DROP TABLE IF EXISTS rl; CREATE TABLE rl (id int)")
	ctx := testCtx(t)
	deadline := time.Now().Add(6 * time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				_, err := r.laxDB.ExecContext(ctx, "INSERT INTO rl VALUES (1)")
				assert.NoError(t, err)
				_ = r.lax.Stats()
				_ = r.syd.Stats()
			}
		}()
	}
	wg.Wait()
}

// A switchover with the old primary still up: lax's standby is promoted
// while syd's database goes on taking writes, and lax's node has not run
// its role check yet, so it forwards a write to syd. That write commits on
// the old primary's timeline, which the promoted database will never
// replay. It used to return nil (the tracker took "not in recovery" for
// "replayed"), and the row was not in the database lax now writes to. It
// is an unknown outcome: the write exists only on the old primary.
func TestWriteForwardedAfterOwnPromotionIsUnknown(t *testing.T) {
	slow := func(cfg *flypg.Config) { cfg.RoleCheckInterval = time.Hour }
	c, _, lax, ctx := twoRegions(t, slow, "CREATE TABLE sw (id bigserial PRIMARY KEY, src text)")
	laxDB := lax.OpenDB()
	defer laxDB.Close()
	_, err := laxDB.ExecContext(ctx, "INSERT INTO sw (src) VALUES ('before')")
	require.NoError(t, err, "awaited while lax's copy is a standby")

	require.NoError(t, c.Replicas[0].Promote(ctx))
	_, err = laxDB.ExecContext(ctx, "INSERT INTO sw (src) VALUES ('after')")
	require.ErrorIs(t, err, flypg.ErrUnknownOutcome, "not nil: the promoted database does not have it")
	assert.Contains(t, err.Error(), "promoted")

	var n int
	require.NoError(t, pgxDB(t, c.Replicas[0].DSN()).QueryRowContext(ctx, "SELECT count(*) FROM sw WHERE src = 'after'").Scan(&n))
	assert.Zero(t, n, "the write is on the old primary only")
	require.NoError(t, pgxDB(t, c.Primary.DSN()).QueryRowContext(ctx, "SELECT count(*) FROM sw WHERE src = 'after'").Scan(&n))
	assert.Equal(t, 1, n, "it committed there")
}

// twoRegions starts syd and lax nodes on a fresh primary and standby (the
// tests that promote it must not share one), each configured by mod, waits
// until lax finds syd, and runs ddl on the primary, replayed on the standby.
func twoRegions(t *testing.T, mod func(*flypg.Config), ddl string) (c *pgcluster.Cluster, syd, lax *flypg.Node, ctx context.Context) {
	t.Helper()
	c = pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	syd = startNode(t, "syd", c.Primary.DSN(), nil, mod)
	lax = startNode(t, "lax", c.Replicas[0].DSN(), []string{syd.GossipAddr()}, mod)
	ctx = testCtx(t)
	require.NoError(t, lax.WaitReady(ctx))
	require.NoError(t, c.Primary.Exec(ctx, ddl))
	require.NoError(t, c.Sync(ctx))
	return c, syd, lax, ctx
}
