package metrics_test

import (
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/metrics"
)

// fullStats has every field set, each to a different value, so that a
// field exported under the wrong name shows.
func fullStats() flypg.Stats {
	return flypg.Stats{
		Forwarded: 1, Local: 2, Retried: 3, PrimaryReads: 4,
		Awaits: 5, Skipped: 6, AwaitTimeouts: 7,
		AwaitP50: 8 * time.Millisecond, AwaitP99: 9 * time.Millisecond,
		Committed: 10, UnknownOutcomes: 11, RemoteTx: 12,
		Databases: []flypg.DatabaseStats{{
			Name: "app", SysID: 7714481945572697899, Role: "standby",
			Replayed: lsn.LSN(0x16_B374D848), ReceiveLagBytes: 13, ReplayLag: 14 * time.Second,
			Tracker: lsn.Stats{Waits: 15, Immediate: 16, Timeouts: 17, Polls: 18, WaitCalls: 19, PollErrors: 20,
				Reconnects: 21, Refreshes: 22, Waiters: 23, SignalActive: true, SignalWakeups: 24,
				SignalConnects: 25, SignalFailures: 26, Mode: "signal",
				WakeDelayP50: 27 * time.Microsecond, WakeDelayP99: 28 * time.Microsecond},
			Serving: sql.DBStats{MaxOpenConnections: 29, OpenConnections: 30, InUse: 31, Idle: 32,
				WaitCount: 33, WaitDuration: 34 * time.Second, MaxIdleClosed: 35, MaxIdleTimeClosed: 36, MaxLifetimeClosed: 37},
		}},
		Members: []flypg.MemberStats{
			{Name: "lax-1", Region: "lax", Self: true},
			{Name: "syd-1", Region: "syd", RTT: 150 * time.Millisecond, Primaries: []string{"app"}},
			{Name: "ams-1", Region: "ams"}, // no RTT measured yet
		},
	}
}

// gather collects c through a pedantic registry (which checks every metric
// against its description and refuses duplicates) and flattens the result
// to "name{label=value,…}" → value, labels sorted, node and region left out.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	fams, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			out[seriesKey(f.GetName(), m)] = sampleValue(m)
		}
	}
	return out
}

func seriesKey(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		if l.GetName() != "node" && l.GetName() != "region" {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func TestCollectMapsEveryField(t *testing.T) {
	got := gather(t, metrics.NewStatsCollector(fullStats, "lax-1", "lax", "syd"))
	db := "database=app"
	for key, want := range map[string]float64{
		"flypg_forwarded_statements_total{}":  1,
		"flypg_local_statements_total{}":      2,
		"flypg_retried_reads_total{}":         3,
		"flypg_primary_reads_total{}":         4,
		"flypg_awaits_total{}":                5,
		"flypg_awaits_skipped_total{}":        6,
		"flypg_await_timeouts_total{}":        7,
		"flypg_await_duration_p50_seconds{}":  0.008,
		"flypg_await_duration_p99_seconds{}":  0.009,
		"flypg_committed_unknown_lsn_total{}": 10,
		"flypg_unknown_outcomes_total{}":      11,
		"flypg_remote_transactions_serving{}": 12,
		"flypg_node_info{primary_region=syd}": 1,

		"flypg_database_info{" + db + ",system_identifier=7714481945572697899}":   1,
		"flypg_database_role{" + db + ",role=primary}":                            0,
		"flypg_database_role{" + db + ",role=standby}":                            1,
		"flypg_database_role{" + db + ",role=unreachable}":                        0,
		"flypg_database_role{" + db + ",role=unknown}":                            0,
		"flypg_database_replayed_lsn_bytes{" + db + "}":                           0x16_B374D848,
		"flypg_database_receive_lag_bytes{" + db + "}":                            13,
		"flypg_database_replay_lag_seconds{" + db + "}":                           14,
		"flypg_tracker_waits_total{" + db + "}":                                   15,
		"flypg_tracker_immediate_waits_total{" + db + "}":                         16,
		"flypg_tracker_wait_timeouts_total{" + db + "}":                           17,
		"flypg_tracker_polls_total{" + db + "}":                                   18,
		"flypg_tracker_wait_for_calls_total{" + db + "}":                          19,
		"flypg_tracker_poll_errors_total{" + db + "}":                             20,
		"flypg_tracker_reconnects_total{" + db + "}":                              21,
		"flypg_tracker_refreshes_total{" + db + "}":                               22,
		"flypg_tracker_waiters{" + db + "}":                                       23,
		"flypg_tracker_signal_active{" + db + "}":                                 1,
		"flypg_tracker_signal_wakeups_total{" + db + "}":                          24,
		"flypg_tracker_signal_connects_total{" + db + "}":                         25,
		"flypg_tracker_signal_failures_total{" + db + "}":                         26,
		"flypg_tracker_mode{" + db + ",mode=signal}":                              1,
		"flypg_tracker_mode{" + db + ",mode=poll}":                                0,
		"flypg_tracker_mode{" + db + ",mode=wait-for}":                            0,
		"flypg_tracker_mode{" + db + ",mode=primary}":                             0,
		"flypg_tracker_wake_delay_p50_seconds{" + db + "}":                        27e-6,
		"flypg_tracker_wake_delay_p99_seconds{" + db + "}":                        28e-6,
		"flypg_serving_connections_max{" + db + "}":                               29,
		"flypg_serving_connections_open{" + db + "}":                              30,
		"flypg_serving_connections_in_use{" + db + "}":                            31,
		"flypg_serving_connections_idle{" + db + "}":                              32,
		"flypg_serving_waits_total{" + db + "}":                                   33,
		"flypg_serving_wait_duration_seconds_total{" + db + "}":                   34,
		"flypg_serving_connections_closed_total{" + db + ",reason=max_idle}":      35,
		"flypg_serving_connections_closed_total{" + db + ",reason=max_idle_time}": 36,
		"flypg_serving_connections_closed_total{" + db + ",reason=max_lifetime}":  37,
		"flypg_database_primary_members{" + db + "}":                              1,

		"flypg_cluster_members{}":                                          3,
		"flypg_link_rtt_seconds{peer=syd-1,peer_region=syd}":               0.15,
		"flypg_primary_member_info{" + db + ",peer=syd-1,peer_region=syd}": 1,
	} {
		if assert.Contains(t, got, key) {
			assert.InDelta(t, want, got[key], 1e-12, key)
		}
	}
	for key := range got {
		assert.False(t, strings.HasPrefix(key, "flypg_link_rtt_seconds{") && !strings.Contains(key, "syd-1"),
			"no RTT for itself or an unmeasured peer: %s", key)
	}
}

// TestCollectHostileStats: states a scrape must survive without failing or
// panicking — names that are not UTF-8, two databases of one name, roles and
// modes from a newer flypg, a peer advertising one primary twice, two peers
// whose names become equal once made valid.
func TestCollectHostileStats(t *testing.T) {
	for _, c := range []struct {
		name  string
		stats flypg.Stats
		want  []string // series that must be there
	}{
		{"duplicate database names", flypg.Stats{Databases: []flypg.DatabaseStats{{Name: "app"}, {Name: "app"}, {Name: "app#2"}, {Name: "app"}}},
			[]string{"flypg_database_replay_lag_seconds{database=app}", "flypg_database_replay_lag_seconds{database=app#2}",
				"flypg_database_replay_lag_seconds{database=app#2#2}", "flypg_database_replay_lag_seconds{database=app#3}"}},
		{"invalid UTF-8", flypg.Stats{
			Databases: []flypg.DatabaseStats{{Name: "a\xffb", Role: "standby"}},
			Members:   []flypg.MemberStats{{Name: "n\xfe", Region: "r\xfe", RTT: time.Millisecond, Primaries: []string{"a\xffb"}}}},
			[]string{"flypg_database_role{database=a\uFFFDb,role=standby}", "flypg_link_rtt_seconds{peer=n\uFFFD,peer_region=r\uFFFD}",
				"flypg_primary_member_info{database=a\uFFFDb,peer=n\uFFFD,peer_region=r\uFFFD}"}},
		{"names equal once valid", flypg.Stats{Members: []flypg.MemberStats{
			{Name: "n\xfe", Region: "r", RTT: time.Millisecond, Primaries: []string{"app"}},
			{Name: "n\xff", Region: "r", RTT: 2 * time.Millisecond, Primaries: []string{"app"}}}},
			[]string{"flypg_link_rtt_seconds{peer=n\uFFFD,peer_region=r}"}},
		{"unknown role and mode", flypg.Stats{Databases: []flypg.DatabaseStats{{Name: "app", Role: "demoted", Tracker: lsn.Stats{Mode: "telepathy"}}}},
			[]string{"flypg_database_role{database=app,role=demoted}", "flypg_tracker_mode{database=app,mode=telepathy}"}},
		{"one primary advertised twice", flypg.Stats{
			Databases: []flypg.DatabaseStats{{Name: "app"}},
			Members:   []flypg.MemberStats{{Name: "syd-1", Region: "syd", Primaries: []string{"app", "app"}}}},
			[]string{"flypg_primary_member_info{database=app,peer=syd-1,peer_region=syd}", "flypg_database_primary_members{database=app}"}},
		{"empty", flypg.Stats{}, []string{"flypg_cluster_members{}"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			col := metrics.NewStatsCollector(func() flypg.Stats { return c.stats }, "n\xff", "r\xff", "p\xff")
			got := gather(t, col)
			for _, k := range c.want {
				assert.Contains(t, got, k)
			}
			problems, err := testutil.CollectAndLint(col)
			require.NoError(t, err)
			assert.Empty(t, problems)
		})
	}
	// Two primaries of one database: the count says so.
	got := gather(t, metrics.NewStatsCollector(func() flypg.Stats {
		return flypg.Stats{Databases: []flypg.DatabaseStats{{Name: "app"}}, Members: []flypg.MemberStats{
			{Name: "a", Primaries: []string{"app"}}, {Name: "b", Primaries: []string{"app"}}, {Name: "c"}}}
	}, "a", "r", "p"))
	assert.Equal(t, 2.0, got["flypg_database_primary_members{database=app}"])
}

func TestDatabaseLabelsStable(t *testing.T) {
	// The collector reads Stats afresh at every scrape; the same Stats give
	// the same series, so no series flaps between scrapes.
	col := metrics.NewStatsCollector(func() flypg.Stats {
		return flypg.Stats{Databases: []flypg.DatabaseStats{{Name: "app"}, {Name: "app"}}}
	}, "n", "r", "p")
	assert.Equal(t, gather(t, col), gather(t, col))
}

func TestOptions(t *testing.T) {
	labels := func(t *testing.T, c prometheus.Collector) map[string]string {
		t.Helper()
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, reg.Register(c))
		fams, err := reg.Gather()
		require.NoError(t, err)
		// The constant labels are the ones every sample has.
		var common map[string]string
		for _, f := range fams {
			for _, m := range f.GetMetric() {
				lm := labelMap(m)
				if common == nil {
					common = lm
					continue
				}
				for k, v := range common {
					if lm[k] != v {
						delete(common, k)
					}
				}
			}
		}
		return common
	}
	stats := func() flypg.Stats { return fullStats() }
	for _, c := range []struct {
		name string
		opts []metrics.Option
		want map[string]string
	}{
		{"default", nil, map[string]string{"node": "lax-1", "region": "lax"}},
		{"without node labels", []metrics.Option{metrics.WithoutNodeLabels()}, map[string]string{}},
		{"extra", []metrics.Option{metrics.WithConstLabels(prometheus.Labels{"app": "todo"})},
			map[string]string{"node": "lax-1", "region": "lax", "app": "todo"}},
		{"replace region", []metrics.Option{metrics.WithConstLabels(prometheus.Labels{"region": "lax-west"})},
			map[string]string{"node": "lax-1", "region": "lax-west"}},
		{"both, in order", []metrics.Option{metrics.WithoutNodeLabels(),
			metrics.WithConstLabels(prometheus.Labels{"app": "todo"}), metrics.WithConstLabels(prometheus.Labels{"env": "prod"})},
			map[string]string{"app": "todo", "env": "prod"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, labels(t, metrics.NewStatsCollector(stats, "lax-1", "lax", "syd", c.opts...)))
		})
	}
	for _, bad := range []prometheus.Labels{{"database": "x"}, {"peer": "x"}, {"": "x"}, {"\xff": "x"}, {"__reserved": "x"}} {
		t.Run(fmt.Sprint("refused ", bad), func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			err := reg.Register(metrics.NewStatsCollector(stats, "lax-1", "lax", "syd", metrics.WithConstLabels(bad)))
			assert.Error(t, err, "registering fails rather than a scrape")
		})
	}
}

func TestNewCollectorNilNode(t *testing.T) {
	assert.PanicsWithValue(t, "metrics: NewCollector: nil *flypg.Node", func() { metrics.NewCollector(nil) })
}

// TestDescribeMatchesCollect: every sample's family is described, and every
// description is used by a fully populated node — what lets the registry
// check the collector at Register time.
func TestDescribeMatchesCollect(t *testing.T) {
	col := metrics.NewStatsCollector(fullStats, "lax-1", "lax", "syd")
	descs := make(chan *prometheus.Desc, 100)
	col.Describe(descs)
	close(descs)
	var described []string
	for d := range descs {
		s := d.String()
		i := strings.Index(s, `fqName: "`) + len(`fqName: "`)
		described = append(described, s[i:i+strings.Index(s[i:], `"`)])
	}
	var collected []string
	for key := range gather(t, col) {
		if name := key[:strings.Index(key, "{")]; !slices.Contains(collected, name) {
			collected = append(collected, name)
		}
	}
	slices.Sort(described)
	slices.Sort(collected)
	assert.Equal(t, described, collected)
	var documented []string
	for name := range schema {
		documented = append(documented, name)
	}
	slices.Sort(documented)
	assert.Equal(t, documented, collected, "the schema the tests check lists every family")
}
