package lsn_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/lsn/wakebench"
)

// BenchmarkWakeDelay measures, in one run, the tracker polling by itself
// (the baseline) and with the WAL-arrival signal, each over b.N writes
// whose WAL is still in flight when Wait starts: the replica streams from
// the primary through a WAN proxy (rtt=…), or directly (loopback).
//
// The metrics, per mode (poll-…, signal-…), from package wakebench:
// wait-p50/p99-µs is the Wait call's own duration; wake-p50/p99-µs the time
// from the standby having the WAL (a passive replication observer, not a
// busy poller) to Wait's return; polls/op and polls/s the tracker's replay
// queries per wait and per second of waiting; idle-polls the queries during
// 1.5 s after the last wait (must be 0). wake-p50-ratio is signal over poll.
//
//	go test -run '^$' -bench WakeDelay -benchtime 300x ./lsn/
func BenchmarkWakeDelay(b *testing.B) {
	for _, rtt := range []time.Duration{10 * time.Millisecond, 0} {
		name := "loopback"
		if rtt > 0 {
			name = fmt.Sprintf("rtt=%v", rtt)
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var w *wan.WAN
			if rtt > 0 {
				w = wan.New(rtt)
				b.Cleanup(func() { require.NoError(b, w.Close()) })
			}
			c := pgcluster.ForTest(b, pgcluster.Options{})
			if w != nil {
				addr, err := w.Proxy(ctx, "primary", fmt.Sprintf("127.0.0.1:%d", c.Primary.Port()))
				require.NoError(b, err)
				require.NoError(b, c.Replicas[0].ReplicateFrom(ctx, addr))
			}
			primary, err := sql.Open("pgx", c.Primary.DSN())
			require.NoError(b, err)
			b.Cleanup(func() { primary.Close() })

			results := map[string]wakebench.Result{}
			for _, mode := range []struct {
				name string
				cfg  lsn.Config
			}{{"poll", lsn.Config{DisableWALSignal: true}}, {"signal", lsn.Config{}}} {
				mode.cfg.DSN = c.Replicas[0].DSN()
				r, err := wakebench.Run(ctx, wakebench.Config{Tracker: mode.cfg, Primary: primary, N: b.N})
				require.NoError(b, err)
				require.Zero(b, r.IdlePolls, "%s: no polls while idle", mode.name)
				results[mode.name] = r
				µs := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
				b.ReportMetric(µs(r.Wait.Quantile(0.5)), mode.name+"-wait-p50-µs")
				b.ReportMetric(µs(r.Wait.Quantile(0.99)), mode.name+"-wait-p99-µs")
				b.ReportMetric(µs(r.Wake.Quantile(0.5)), mode.name+"-wake-p50-µs")
				b.ReportMetric(µs(r.Wake.Quantile(0.99)), mode.name+"-wake-p99-µs")
				b.ReportMetric(r.PollsPerWait, mode.name+"-polls/op")
				b.ReportMetric(r.PollsPerSecond, mode.name+"-polls/s")
				b.ReportMetric(r.IdlePollsPerSecond, mode.name+"-idle-polls/s")
			}
			b.ReportMetric(float64(results["signal"].Wake.Quantile(0.5))/float64(max(results["poll"].Wake.Quantile(0.5), 1)),
				"wake-p50-ratio")
			b.ReportMetric(0, "ns/op") // the per-mode metrics are the result
		})
	}
}
