package metrics

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/lsn"
)

// The values of DatabaseStats.Role and lsn.Stats.Mode. Each gets its own
// series, 1 for the current one and 0 for the others, so that a change is a
// value change rather than a series appearing.
var (
	roles = []string{"primary", "standby", "unreachable", "unknown"}
	modes = []string{"wait-for", "signal", "poll", "primary"}
)

// defineDatabase declares the per-database metrics: the local copy's state,
// its LSN tracker and the pool that serves forwarded work.
func (c *collector) defineDatabase(d descFunc) {
	add := func(name, help string, typ prometheus.ValueType, val func(*flypg.DatabaseStats) float64) {
		c.db = append(c.db, scalar[flypg.DatabaseStats]{d(name, help, "database"), typ, val})
	}
	c.dbInfo = d("database_info", "Always 1; system_identifier is the PostgreSQL cluster's system identifier (0 until known).",
		"database", "system_identifier")
	c.dbRole = d("database_role", "1 for the local copy's current role (primary, standby, unreachable, unknown), 0 for the others.",
		"database", "role")
	add("database_replay_lag_seconds",
		"How long ago the last transaction the local standby replayed committed on the primary (grows on an idle primary too).",
		gauge, func(s *flypg.DatabaseStats) float64 { return s.ReplayLag.Seconds() })
	add("database_receive_lag_bytes", "WAL the local standby has received but not yet replayed.",
		gauge, func(s *flypg.DatabaseStats) float64 { return float64(s.ReceiveLagBytes) })
	add("database_replayed_lsn_bytes", "The local standby's replay position (its LSN as a byte offset into the WAL).",
		gauge, func(s *flypg.DatabaseStats) float64 { return float64(s.Replayed) })

	tracker := func(name, help string, typ prometheus.ValueType, val func(*lsn.Stats) float64) {
		add("tracker_"+name, help, typ, func(s *flypg.DatabaseStats) float64 { return val(&s.Tracker) })
	}
	tcount := func(name, help string, val func(*lsn.Stats) uint64) {
		tracker(name, help, counter, func(s *lsn.Stats) float64 { return float64(val(s)) })
	}
	tcount("waits_total", "Waits for replay on the LSN tracker (awaits and AfterLSN).",
		func(s *lsn.Stats) uint64 { return s.Waits })
	tcount("immediate_waits_total", "Waits satisfied at once, without a query.",
		func(s *lsn.Stats) uint64 { return s.Immediate })
	tcount("wait_timeouts_total", "Waits that ended because their context ended before replay reached the target.",
		func(s *lsn.Stats) uint64 { return s.Timeouts })
	tcount("polls_total", "Replay-position queries (client-side polls plus WAIT FOR LSN statements).",
		func(s *lsn.Stats) uint64 { return s.Polls })
	tcount("wait_for_calls_total", "Replay-position queries that were WAIT FOR LSN statements (PostgreSQL 19+).",
		func(s *lsn.Stats) uint64 { return s.WaitCalls })
	tcount("poll_errors_total", "Failed polls and failed connection attempts.",
		func(s *lsn.Stats) uint64 { return s.PollErrors })
	tcount("reconnects_total", "Tracker connections opened after a previous one was lost.",
		func(s *lsn.Stats) uint64 { return s.Reconnects })
	tcount("refreshes_total", "Refresh calls (replay position re-read on demand).",
		func(s *lsn.Stats) uint64 { return s.Refreshes })
	tcount("signal_wakeups_total", "Polls triggered by the WAL-arrival signal.",
		func(s *lsn.Stats) uint64 { return s.SignalWakeups })
	tcount("signal_connects_total", "WAL-arrival signal replication connections that started streaming.",
		func(s *lsn.Stats) uint64 { return s.SignalConnects })
	tcount("signal_failures_total", "WAL-arrival signal connection attempts that failed or streams that broke.",
		func(s *lsn.Stats) uint64 { return s.SignalFailures })
	tracker("waiters", "Waits blocked right now.",
		gauge, func(s *lsn.Stats) float64 { return float64(s.Waiters) })
	tracker("signal_active", "1 while the WAL-arrival signal's replication connection is streaming.",
		gauge, func(s *lsn.Stats) float64 { return boolValue(s.SignalActive) })
	tracker("wake_delay_p50_seconds", "Median time from a poll's answer to the satisfied wait's return (overstated by up to 25%).",
		gauge, func(s *lsn.Stats) float64 { return s.WakeDelayP50.Seconds() })
	tracker("wake_delay_p99_seconds", "99th percentile time from a poll's answer to the satisfied wait's return (overstated by up to 25%).",
		gauge, func(s *lsn.Stats) float64 { return s.WakeDelayP99.Seconds() })
	c.trackerMode = d("tracker_mode", "1 for how the tracker learns of replay now (wait-for, signal, poll, primary), 0 for the others; all 0 before it connects.",
		"database", "mode")

	pool := func(name, help string, typ prometheus.ValueType, val func(*flypg.DatabaseStats) float64) {
		add("serving_"+name, help, typ, val)
	}
	pool("connections_max", "Most primary connections the serving pool may open (0 until the pool opens).",
		gauge, func(s *flypg.DatabaseStats) float64 { return float64(s.Serving.MaxOpenConnections) })
	pool("connections_open", "Primary connections open in the serving pool, in use or idle.",
		gauge, func(s *flypg.DatabaseStats) float64 { return float64(s.Serving.OpenConnections) })
	pool("connections_in_use", "Primary connections of the serving pool in use.",
		gauge, func(s *flypg.DatabaseStats) float64 { return float64(s.Serving.InUse) })
	pool("connections_idle", "Idle primary connections of the serving pool.",
		gauge, func(s *flypg.DatabaseStats) float64 { return float64(s.Serving.Idle) })
	pool("waits_total", "Forwarded requests that waited for a serving-pool connection.",
		counter, func(s *flypg.DatabaseStats) float64 { return float64(s.Serving.WaitCount) })
	pool("wait_duration_seconds_total", "Total time forwarded requests waited for a serving-pool connection.",
		counter, func(s *flypg.DatabaseStats) float64 { return s.Serving.WaitDuration.Seconds() })
	c.poolClosed = d("serving_connections_closed_total", "Serving-pool connections closed by database/sql, by reason (max_idle, max_idle_time, max_lifetime).",
		"database", "reason")
}

// collectDatabases emits the per-database metrics and returns the label
// value it gave each database, in Stats order.
func (c *collector) collectDatabases(ch chan<- prometheus.Metric, s *flypg.Stats) []string {
	names := databaseLabels(s.Databases)
	for i := range s.Databases {
		ds, name := &s.Databases[i], names[i]
		emit(ch, c.dbInfo, gauge, 1, name, strconv.FormatUint(ds.SysID, 10))
		for _, r := range roles {
			emit(ch, c.dbRole, gauge, boolValue(ds.Role == r), name, r)
		}
		if ds.Role != "" && !slices.Contains(roles, ds.Role) {
			emit(ch, c.dbRole, gauge, 1, name, ds.Role) // a role this package does not know yet
		}
		for _, m := range c.db {
			emit(ch, m.desc, m.typ, m.val(ds), name)
		}
		for _, m := range modes {
			emit(ch, c.trackerMode, gauge, boolValue(ds.Tracker.Mode == m), name, m)
		}
		if ds.Tracker.Mode != "" && !slices.Contains(modes, ds.Tracker.Mode) {
			emit(ch, c.trackerMode, gauge, 1, name, ds.Tracker.Mode)
		}
		for _, r := range []struct {
			reason string
			n      int64
		}{{"max_idle", ds.Serving.MaxIdleClosed}, {"max_idle_time", ds.Serving.MaxIdleTimeClosed}, {"max_lifetime", ds.Serving.MaxLifetimeClosed}} {
			emit(ch, c.poolClosed, counter, float64(r.n), name, r.reason)
		}
	}
	return names
}

// databaseLabels gives each database its database label: its name, and for
// a second database of the same name (two servers, or two URLs of one) the
// name with "#2", "#3", … appended — two series with the same labels would
// fail the whole scrape.
func databaseLabels(dbs []flypg.DatabaseStats) []string {
	out := make([]string, len(dbs))
	used := make(map[string]bool, len(dbs))
	for i, ds := range dbs {
		name := validUTF8(ds.Name)
		for k := 2; used[name]; k++ {
			name = validUTF8(ds.Name) + "#" + strconv.Itoa(k)
		}
		used[name] = true
		out[i] = name
	}
	return out
}
