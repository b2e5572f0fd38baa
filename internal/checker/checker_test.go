package checker_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/checker"
	"github.com/flypg/flypg/internal/pgcluster"
)

var secret = []byte("Jq3mW8b0oX2vYk6sPz1tR9cN4hL7fA5dE0gU2iB8nMw=") // openssl rand -base64 32

func startNode(t *testing.T, region, dsn string, join []string, mod func(*flypg.Config)) *flypg.Node {
	t.Helper()
	cfg := flypg.Config{Region: region, PrimaryRegion: "syd", DSN: dsn, NodeName: region + "-" + t.Name(),
		GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", Join: join, Secret: secret, GossipProfile: "local",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := flypg.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

type twoRegions struct {
	c       *pgcluster.Cluster
	syd     *flypg.Node
	lax     *flypg.Node
	laxDB   *sql.DB
	primary *sql.DB
}

func startTwoRegions(t *testing.T, laxMod func(*flypg.Config)) *twoRegions {
	t.Helper()
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: 1})
	r := &twoRegions{c: c}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.syd = startNode(t, "syd", c.Primary.DSN(), nil, nil)
	require.NoError(t, r.syd.WaitReady(ctx), "syd knows its database is the primary before it serves")
	r.lax = startNode(t, "lax", c.Replicas[0].DSN(), []string{r.syd.GossipAddr()}, laxMod)
	require.NoError(t, r.lax.WaitReady(ctx))
	r.laxDB = r.lax.OpenDB()
	var err error
	r.primary, err = sql.Open("pgx", c.Primary.DSN())
	require.NoError(t, err)
	t.Cleanup(func() {
		r.laxDB.Close()
		r.primary.Close()
	})
	return r
}

// The checker on real servers with nothing wrong: every kind of operation
// runs, every write is acknowledged, and nothing is reported.
func TestRunOnHealthyCluster(t *testing.T) {
	r := startTwoRegions(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := checker.Run(ctx, checker.Config{
		DBs:      []*checker.Target{checker.NewTarget("lax", "lax", r.laxDB, r.lax)},
		Primary:  r.primary,
		Clients:  6,
		Duration: 3 * time.Second,
		Logf:     t.Logf,
	})
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	for _, k := range []checker.OpKind{checker.OpExec, checker.OpReturning, checker.OpTx, checker.OpPipelineTx,
		checker.OpCall, checker.OpRead, checker.OpReadTx} {
		assert.NotZero(t, rep.ByKind[k][checker.OK], "some %s succeeded", k)
	}
	assert.Equal(t, rep.Writes, rep.Outcomes[checker.OK], "every write acknowledged: %s", rep.Summary())
	assert.Equal(t, rep.Reads, rep.ReadOutcomes[checker.OK])
	assert.NotZero(t, rep.WriteLatency.P50)
	assert.Greater(t, rep.Throughput, 0.0)
	require.NotEmpty(t, rep.Samples)
	start, mid, end := rep.Curve()
	assert.NotZero(t, start.Goroutines)
	assert.LessOrEqual(t, start.At, mid.At)
	assert.LessOrEqual(t, mid.At, end.At)
	st := r.lax.Stats()
	assert.NotZero(t, st.Forwarded, "the writes went through flypg's forwarding")
	assert.NotZero(t, st.Local, "the reads ran on lax's replica")
}

// The checker catches a real break of read-your-writes: with replay paused
// and AwaitTimeoutSucceed, writes return nil without being replayed, and the
// reads that follow miss them.
func TestRunCatchesStaleReads(t *testing.T) {
	r := startTwoRegions(t, func(cfg *flypg.Config) {
		cfg.AwaitTimeout = 50 * time.Millisecond
		cfg.AwaitTimeoutPolicy = flypg.AwaitTimeoutSucceed
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := checker.Start(ctx, checker.Config{
		DBs:      []*checker.Target{checker.NewTarget("lax", "lax", r.laxDB, r.lax)},
		Primary:  r.primary,
		Clients:  2,
		Duration: 2 * time.Second,
		Mix:      checker.Mix{Exec: 1, Read: 1},
	})
	require.NoError(t, err)
	require.NoError(t, r.c.Replicas[0].PauseReplay(ctx))
	rep, err := l.Finish(ctx, nil)
	require.NoError(t, r.c.Replicas[0].ResumeReplay(ctx))
	require.NoError(t, err)
	require.Error(t, rep.Err(), "stale reads must be reported: %s", rep.Summary())
	stale := 0
	for _, v := range rep.Violations {
		assert.Equal(t, checker.StaleRead, v.Kind, "%s", v)
		stale++
		assert.NotEmpty(t, v.History)
	}
	assert.NotZero(t, stale)
	t.Logf("first violation:\n%s", rep.Violations[0])
}

// The same load sent direct to the primary with pgx (the soak's baseline)
// checks clean too: the checker works on a plain database.
func TestRunDirect(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{Replicas: -1})
	db, err := sql.Open("pgx", c.Primary.DSN())
	require.NoError(t, err)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := checker.Run(ctx, checker.Config{
		DBs:      []*checker.Target{checker.NewTarget("direct", "lax", db, nil)},
		Primary:  db,
		Clients:  4,
		Duration: time.Second,
	})
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	assert.NotZero(t, rep.ByKind[checker.OpCall][checker.OK], "calls run as plain statements")
	assert.Equal(t, rep.Writes, rep.Outcomes[checker.OK])
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	_, err := checker.Start(ctx, checker.Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Config.DBs is empty")
	assert.Contains(t, err.Error(), "Config.Primary is nil")
	db, err := sql.Open("pgx", "postgres://127.0.0.1:1/x")
	require.NoError(t, err)
	defer db.Close()
	_, err = checker.Start(ctx, checker.Config{DBs: []*checker.Target{checker.NewTarget("x", "x", db, nil)}, Primary: db,
		Table: "bad; DROP TABLE x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "table name")
}

// A small soak end to end: both runs clean, the baseline measured in the
// same run, the report in markdown.
func TestSoakSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := checker.Soak(ctx, checker.SoakConfig{Clients: 20, Duration: 2 * time.Second, DirectDuration: time.Second,
		RTT: 10 * time.Millisecond, MaxConns: 8, Logf: t.Logf})
	require.NoError(t, err)
	require.NoError(t, rep.Err())
	require.NotNil(t, rep.Direct)
	assert.NotZero(t, rep.Flypg.Writes)
	assert.NotZero(t, rep.Direct.Writes)
	wp50, _, rp50, _, thr := rep.Ratios()
	assert.Greater(t, wp50, 0.0)
	assert.Greater(t, rp50, 0.0)
	assert.Greater(t, thr, 0.0)
	var b strings.Builder
	require.NoError(t, rep.WriteMarkdown(&b))
	assert.Contains(t, b.String(), "| write p50 |")
	assert.Contains(t, b.String(), "| middle |")
	t.Log("\n" + b.String())
}
