package lsn_test

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/migrate"
)

// replaySample is one change of the replay position seen by the observer:
// replay reached lsn after the observer's previous query started (prevSend)
// and before this query's answer arrived (recv).
type replaySample struct {
	lsn            lsn.LSN
	prevSend, recv time.Time
}

// observeReplay polls the replica's replay position as fast as one
// connection allows, independently of the tracker, to timestamp replay.
func observeReplay(b *testing.B, ctx context.Context, dsn string) (stop func() []replaySample) {
	conn := connect(b, ctx, dsn)
	var (
		done    atomic.Bool
		wg      sync.WaitGroup
		samples []replaySample
	)
	wg.Go(func() {
		var last lsn.LSN
		lastSend := time.Now()
		for !done.Load() {
			send := time.Now()
			var cur lsn.LSN
			if err := conn.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&cur); err != nil {
				b.Error(err)
				return
			}
			if cur != last {
				samples = append(samples, replaySample{lsn: cur, prevSend: lastSend, recv: time.Now()})
				last = cur
			}
			lastSend = send
		}
	})
	return func() []replaySample {
		done.Store(true)
		wg.Wait()
		return samples
	}
}

// BenchmarkWakeDelay measures how long after the replica replays a commit
// the waiting caller wakes, and how many queries the tracker spends on it.
//
// Method: each iteration commits a row on the primary, reads
// pg_current_wal_insert_lsn() on the same session, and calls Wait. A separate
// observer connection polls pg_last_wal_replay_lsn() back to back, so the
// moment replay passed the target is bracketed between the start of the
// observer's last query that did not see it and the arrival of the first
// answer that did. The reported delay is Wait's return time minus the middle
// of that bracket (bracket-µs is the median half-width: the measurement's
// own uncertainty); it can be negative when the tracker's poll happened to
// land first. wake-p50-µs is the tracker's own number: from the arrival of
// the answer that satisfied the waiter to Wait's return. The observer takes a
// CPU of its own, which on a small machine slows everything else down: the
// numbers are an upper bound for an unobserved tracker.
func BenchmarkWakeDelay(b *testing.B) {
	ctx := context.Background()
	c := pgcluster.ForTest(b, pgcluster.Options{})
	primary := connect(b, ctx, c.Primary.DSN())
	_, err := primary.Exec(ctx, "CREATE TABLE bench (id bigserial PRIMARY KEY, v int)")
	require.NoError(b, err)
	require.NoError(b, c.Sync(ctx))

	run := func(b *testing.B, cfg lsn.Config) {
		cfg.DSN = c.Replicas[0].DSN()
		tr := newTracker(b, cfg)
		require.NoError(b, tr.Wait(ctx, commit(b, ctx, primary, "INSERT INTO bench (v) VALUES (0)")), "warm up")
		stop := observeReplay(b, ctx, cfg.DSN)

		type wake struct {
			target lsn.LSN
			at     time.Time
		}
		var (
			wakes   []wake
			waiting time.Duration
		)
		before := tr.Stats()
		for b.Loop() {
			target := commit(b, ctx, primary, "INSERT INTO bench (v) VALUES (1)")
			start := time.Now()
			if err := tr.Wait(ctx, target); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			waiting += now.Sub(start)
			wakes = append(wakes, wake{target, now})
		}
		samples := stop()
		after := tr.Stats()

		var delays, brackets []time.Duration
		for _, w := range wakes {
			if off := uint64(w.target) % 8192; off == 24 || off == 40 {
				continue // page-boundary target: replay reports the boundary, the observer would wait for more WAL
			}
			i, _ := slices.BinarySearchFunc(samples, w.target, func(s replaySample, t lsn.LSN) int {
				return int(min(max(int64(s.lsn)-int64(t), -1), 1))
			})
			if i == len(samples) || i == 0 {
				continue // replayed before the observer started, or never seen
			}
			s := samples[i]
			half := s.recv.Sub(s.prevSend) / 2
			delays = append(delays, w.at.Sub(s.prevSend.Add(half)))
			brackets = append(brackets, half)
		}
		if len(delays) == 0 {
			b.Fatal("no wake could be matched to an observed replay")
		}
		slices.Sort(delays)
		slices.Sort(brackets)
		q := func(d []time.Duration, p float64) float64 {
			return float64(d[min(int(p*float64(len(d))), len(d)-1)]) / float64(time.Microsecond)
		}
		polls := float64(after.Polls - before.Polls)
		b.ReportMetric(q(delays, 0.50), "p50-µs")
		b.ReportMetric(q(delays, 0.99), "p99-µs")
		b.ReportMetric(q(brackets, 0.50), "bracket-µs")
		b.ReportMetric(polls/waiting.Seconds(), "polls/s")
		b.ReportMetric(polls/float64(len(wakes)), "polls/op")
		b.ReportMetric(float64(after.WakeDelayP50)/float64(time.Microsecond), "wake-p50-µs")
		if after.PollErrors != before.PollErrors {
			b.Logf("poll errors: %d", after.PollErrors-before.PollErrors)
		}
	}

	b.Run("poll", func(b *testing.B) { run(b, lsn.Config{}) })

	db := openDB(b, c.Primary.DSN())
	require.NoError(b, migrate.Up(ctx, db))
	require.NoError(b, c.Sync(ctx))
	// Every wait served by the server-side function from its first moment.
	b.Run("wait-function", func(b *testing.B) { run(b, lsn.Config{WaitFunctionAfter: time.Nanosecond}) })
	// The default: client polls first, the function for waits past 8 ms.
	b.Run("default-with-function", func(b *testing.B) { run(b, lsn.Config{}) })
}

func openDB(b *testing.B, dsn string) *sql.DB {
	db, err := sql.Open("pgx", dsn)
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	return db
}
