package metrics_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/metrics"
)

// serve registers collectors on a fresh registry and serves it as /metrics,
// as an app would.
func serve(t *testing.T, cs ...prometheus.Collector) *httptest.Server {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		require.NoError(t, reg.Register(c))
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	t.Cleanup(srv.Close)
	return srv
}

// checkSchema asserts that every family of the scrape is one the package
// documents, with its type and labels, that each sample carries the node's
// constant labels, and that every documented family is there (but the ones
// in skip).
func checkSchema(t *testing.T, s scrape, skip ...string) {
	t.Helper()
	for name, f := range s {
		if !strings.HasPrefix(name, "flypg_") {
			continue // promhttp's own
		}
		want, ok := schema[name]
		if !assert.True(t, ok, "%s is documented", name) {
			continue
		}
		assert.Equal(t, want.typ, f.GetType(), "%s type", name)
		assert.NotEmpty(t, f.GetHelp(), "%s help", name)
		wantLabels := append([]string{"node", "region"}, want.labels...)
		slices.Sort(wantLabels)
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
			}
			slices.Sort(got)
			assert.Equal(t, wantLabels, got, "%s labels", name)
		}
	}
	for name := range schema {
		if !slices.Contains(skip, name) {
			assert.Contains(t, s, name, "%s is exported", name)
		}
	}
}

// TestScrapeTwoRegions runs a known mix of statements in the replica
// region, scrapes both nodes over HTTP and checks that each counter moved
// by exactly what the mix implies, and that the state gauges (roles,
// membership, link RTT, the serving side's open transactions) describe the
// running cluster.
func TestScrapeTwoRegions(t *testing.T) {
	ctx := testCtx(t)
	r := startRegions(t)
	sydDB, laxDB := r.syd.OpenDB(), r.lax.OpenDB()
	t.Cleanup(func() { sydDB.Close(); laxDB.Close() })
	for _, q := range []string{
		"CREATE TABLE hits (id bigserial PRIMARY KEY, note text)",
		// A function that writes: SELECT bump() looks like a read, the
		// replica refuses it (25006), and flypg retries it as a write.
		"CREATE FUNCTION bump() RETURNS bigint LANGUAGE sql VOLATILE AS $$ INSERT INTO hits (note) VALUES ('bump') RETURNING id $$",
	} {
		_, err := sydDB.ExecContext(ctx, q)
		require.NoError(t, err)
	}
	require.NoError(t, r.c.Sync(ctx))

	srv := serve(t, metrics.NewCollector(r.syd), metrics.NewCollector(r.lax))
	lax := map[string]string{"node": r.lax.Name(), "region": "lax"}
	syd := map[string]string{"node": r.syd.Name(), "region": "syd"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	before := scrapeURL(t, srv)

	// The mix, in the replica region.
	exec := func(ctx context.Context, q string, args ...any) {
		t.Helper()
		_, err := laxDB.ExecContext(ctx, q, args...)
		require.NoError(t, err, q)
	}
	var n int64
	for i := range 3 { // 3 forwarded, 3 awaited
		exec(ctx, "INSERT INTO hits (note) VALUES ($1)", strconv.Itoa(i))
	}
	for range 2 { // 2 local
		require.NoError(t, laxDB.QueryRowContext(ctx, "SELECT count(*) FROM hits").Scan(&n))
	}
	assert.EqualValues(t, 3, n, "the awaited inserts are visible on the replica")
	exec(flypg.NoAwait(ctx), "INSERT INTO hits (note) VALUES ('no await')") // 1 forwarded, 1 skipped
	// 1 primary read (forwarded).
	require.NoError(t, laxDB.QueryRowContext(flypg.OnPrimary(ctx), "SELECT count(*) FROM hits").Scan(&n))
	// 1 local attempt refused, 1 retried, forwarded and awaited.
	require.NoError(t, laxDB.QueryRowContext(ctx, "SELECT bump()").Scan(&n))

	// A remote transaction: 2 forwarded statements, 1 await at Commit; while
	// it is open, syd serves it.
	tx, err := laxDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO hits (note) VALUES ('tx 1')")
	require.NoError(t, err)
	during := scrapeURL(t, srv)
	_, err = tx.ExecContext(ctx, "INSERT INTO hits (note) VALUES ('tx 2')")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	after := scrapeURL(t, srv)
	checkSchema(t, after)

	delta := func(name string, labels map[string]string) float64 {
		t.Helper()
		return after.value(t, name, labels) - before.value(t, name, labels)
	}
	for _, c := range []struct {
		name string
		want float64
	}{
		{"flypg_forwarded_statements_total", 3 + 1 + 1 + 1 + 2},
		{"flypg_local_statements_total", 2 + 1},
		{"flypg_retried_reads_total", 1},
		{"flypg_primary_reads_total", 1},
		{"flypg_awaits_total", 3 + 1 + 1},
		{"flypg_awaits_skipped_total", 1},
		{"flypg_await_timeouts_total", 0},
		{"flypg_committed_unknown_lsn_total", 0},
		{"flypg_unknown_outcomes_total", 0},
	} {
		assert.Equal(t, c.want, delta(c.name, lax), "lax %s", c.name)
	}
	assert.Equal(t, 0.0, delta("flypg_forwarded_statements_total", syd), "the primary region forwards nothing")
	assert.Equal(t, 0.0, delta("flypg_awaits_total", syd), "the primary region awaits nothing")

	laxOwn := with(lax, "database", "postgres")
	sydOwn := with(syd, "database", "postgres")
	assert.Equal(t, delta("flypg_awaits_total", lax), delta("flypg_tracker_waits_total", laxOwn),
		"every await is one wait on the tracker of lax's database")
	assert.Greater(t, after.value(t, "flypg_await_duration_p50_seconds", lax), 0.0, "awaits were timed")
	assert.GreaterOrEqual(t, after.value(t, "flypg_await_duration_p99_seconds", lax),
		after.value(t, "flypg_await_duration_p50_seconds", lax))

	// Serving side: the transaction was open on syd during, and is not after.
	assert.Equal(t, 1.0, during.value(t, "flypg_remote_transactions_serving", syd), "syd serves lax's open transaction")
	assert.Equal(t, 0.0, after.value(t, "flypg_remote_transactions_serving", syd), "committed: no longer served")
	assert.Equal(t, 0.0, after.value(t, "flypg_remote_transactions_serving", lax))
	// (That syd's pool keeps its connections is TestServingPoolReusesConnections.)
	maxConns := float64(r.syd.Stats().Databases[0].Serving.MaxOpenConnections)
	assert.Greater(t, maxConns, 0.0)
	assert.Equal(t, maxConns, after.value(t, "flypg_serving_connections_max", sydOwn), "the serving pool's bound")

	// Roles.
	for _, c := range []struct {
		labels map[string]string
		role   string
	}{{laxOwn, "standby"}, {sydOwn, "primary"}} {
		for _, role := range []string{"primary", "standby", "unreachable", "unknown"} {
			want := 0.0
			if role == c.role {
				want = 1
			}
			assert.Equal(t, want, after.value(t, "flypg_database_role", with(c.labels, "role", role)), "%v role %s", c.labels, role)
		}
	}
	var sysID string
	require.NoError(t, sydDB.QueryRowContext(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&sysID))
	for _, own := range []map[string]string{laxOwn, sydOwn} {
		assert.Equal(t, 1.0, after.value(t, "flypg_database_info", with(own, "system_identifier", sysID)),
			"database_info names the cluster's system identifier")
	}
	assert.GreaterOrEqual(t, after.value(t, "flypg_database_replay_lag_seconds", laxOwn), 0.0)
	var replayed lsn.LSN
	require.NoError(t, laxDB.QueryRowContext(ctx, "SELECT pg_last_wal_replay_lsn()").Scan(&replayed))
	got := after.value(t, "flypg_database_replayed_lsn_bytes", laxOwn)
	assert.LessOrEqual(t, got, float64(replayed), "the replay position is one the standby has reached")
	assert.Equal(t, 1.0, after.value(t, "flypg_tracker_mode", with(laxOwn, "mode", modeOf(t, r.lax))),
		"tracker_mode matches Stats")

	// Membership.
	for _, self := range []map[string]string{lax, syd} {
		assert.Equal(t, 2.0, after.value(t, "flypg_cluster_members", self))
		assert.Equal(t, 1.0, after.value(t, "flypg_database_primary_members", with(self, "database", "postgres")),
			"one member holds the primary")
		assert.Equal(t, 1.0, after.value(t, "flypg_primary_member_info",
			with(self, "database", "postgres", "peer", r.syd.Name(), "peer_region", "syd")), "and it is syd")
	}
	rtt := after.samples("flypg_link_rtt_seconds", with(lax, "peer", r.syd.Name(), "peer_region", "syd"))
	require.Len(t, rtt, 1, "lax measured its link to syd")
	assert.Greater(t, rtt[0].GetGauge().GetValue(), 0.0)
	assert.Less(t, rtt[0].GetGauge().GetValue(), 1.0, "loopback RTT, in seconds")
	assert.Empty(t, after.samples("flypg_link_rtt_seconds", with(lax, "peer", r.lax.Name())), "no RTT to itself")

	// The collectors pass client_golang's linter.
	for _, n := range []*flypg.Node{r.syd, r.lax} {
		problems, err := testutil.CollectAndLint(metrics.NewCollector(n))
		require.NoError(t, err)
		assert.Empty(t, problems)
	}
}

func modeOf(t *testing.T, n *flypg.Node) string {
	t.Helper()
	m := n.Stats().Databases[0].Tracker.Mode
	require.NotEmpty(t, m, "the tracker has connected")
	return m
}

// TestCollectorAfterClose: a collector that outlives its node (an app
// shutting down while a scrape runs) still scrapes, reporting the final
// counters.
func TestCollectorAfterClose(t *testing.T) {
	ctx := testCtx(t)
	r := startRegions(t)
	db := r.lax.OpenDB()
	defer db.Close()
	var one int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT 1").Scan(&one))
	srv := serve(t, metrics.NewCollector(r.lax))
	require.NoError(t, r.lax.Close())
	s := scrapeURL(t, srv)
	assert.Equal(t, 1.0, s.value(t, "flypg_local_statements_total", nil))
}

// TestDevMode: a node with no primary region has no cluster; the
// collector says so (no members) and leaves out what only a cluster has.
func TestDevMode(t *testing.T) {
	ctx := testCtx(t)
	c := cluster(t)
	n, err := flypg.Start(ctx, flypg.Config{DSN: c.Primary.DSN(), NodeName: "dev"})
	require.NoError(t, err)
	defer n.Close()
	db := n.OpenDB()
	defer db.Close()
	_, err = db.ExecContext(ctx, "SELECT 1")
	require.NoError(t, err)

	s := scrapeURL(t, serve(t, metrics.NewCollector(n)))
	checkSchema(t, s, clusterOnly...)
	for _, name := range clusterOnly {
		assert.NotContains(t, s, name)
	}
	self := map[string]string{"node": "dev", "region": n.Region()}
	assert.Equal(t, 0.0, s.value(t, "flypg_cluster_members", self))
	assert.Equal(t, 1.0, s.value(t, "flypg_node_info", map[string]string{"primary_region": ""}))
	assert.Equal(t, 1.0, s.value(t, "flypg_database_role", map[string]string{"role": "unknown"}))
}
