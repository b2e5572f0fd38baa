// Package wakebench measures how quickly an lsn.Tracker wakes a waiter
// after the standby has a write, without disturbing what it measures. The
// benchmark of package lsn and the lab (cmd/flypg-lab) both call Run.
//
// # Method
//
// Each of N iterations commits a write on the primary, reads
// pg_current_wal_insert_lsn() on the same session, and calls Wait on a
// fresh tracker for the standby. Two durations are recorded per iteration:
//
//   - Wait: the Wait call's own duration, from its call to its return.
//   - Wake: from the moment the standby had the write's WAL (or from Wait's
//     call, if that was later) to Wait's return.
//
// When the standby had the WAL is taken from a passive observer: a
// physical replication connection to the standby, whose walsender sends as
// soon as the standby's walreceiver has flushed new WAL — the moment the
// startup process is woken to replay it. The observer sleeps in a read
// until then, unlike a client polling pg_last_wal_replay_lsn() back to back,
// which keeps a CPU busy, slows everything else on a small machine and so
// overstates the polling rate of what it watches. Replay itself finishes
// microseconds after the flush on an idle standby, so Wake is the delay
// after replay plus that; when the tracker uses the same kind of signal,
// both are woken by the same flush.
//
// Polls are counted from the tracker's Stats: per wait, per second of
// waiting, and during an idle window after the last wait, which must show
// none.
package wakebench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/lsn/internal/walstream"
)

// Defaults for the zero fields of Config.
const (
	DefaultN          = 100
	DefaultIdleWindow = 1500 * time.Millisecond // past the signal's default 1 s linger
	// DefaultExec is the write used without Config.Exec; Run creates its
	// table if needed.
	DefaultExec = "INSERT INTO flypg_wakebench DEFAULT VALUES"
)

// Config configures a Run.
type Config struct {
	// Tracker configures the tracker under test; Tracker.DSN (the standby)
	// is required. Run opens its own tracker and closes it.
	Tracker lsn.Config
	// Primary is where the writes commit. Required.
	Primary *sql.DB
	// Exec and Args are the write; default DefaultExec into a table Run
	// creates (flypg_wakebench).
	Exec string
	Args []any
	// N is the number of measured writes. Default 100.
	N int
	// IdleWindow is how long Run watches the tracker after the last wait
	// for polls that should not happen. Default 1.5 s; negative: skip.
	IdleWindow time.Duration
	// Progress, if set, is called after each measured write.
	Progress func(done, total int)
}

// Durations is a sorted set of measurements.
type Durations []time.Duration

// Quantile returns the q-quantile (0 ≤ q ≤ 1) by the nearest-rank method,
// or 0 for no measurements.
func (d Durations) Quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// Sum is the total of all measurements.
func (d Durations) Sum() time.Duration {
	var s time.Duration
	for _, v := range d {
		s += v
	}
	return s
}

// Result is what a Run measured.
type Result struct {
	// Wait holds each Wait call's duration; Wake the delay from the WAL's
	// arrival at the standby (or Wait's call, if later) to Wait's return,
	// for the waits the observer could match. Both sorted.
	Wait, Wake Durations
	// Unmatched counts waits whose WAL the observer did not see (a target
	// just past a WAL page header, which replay reports as the boundary).
	Unmatched int
	// Polls is the tracker's replay queries during the measured waits;
	// PollsPerWait and PollsPerSecond relate them to the waits and to the
	// time spent waiting.
	Polls                        uint64
	PollsPerWait, PollsPerSecond float64
	// IdlePolls is the tracker's replay queries during IdleWindow after
	// the last wait (0 is the requirement), IdlePollsPerSecond the rate.
	IdlePolls          uint64
	IdlePollsPerSecond float64
	// Stats is the tracker's at the end of the measured waits.
	Stats lsn.Stats
}

// Run measures cfg.N waits. See the package documentation for the method.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var r Result
	if cfg.Primary == nil || cfg.Tracker.DSN == "" {
		return r, errors.New("wakebench: Config.Primary and Config.Tracker.DSN are required")
	}
	if cfg.N <= 0 {
		cfg.N = DefaultN
	}
	if cfg.IdleWindow == 0 {
		cfg.IdleWindow = DefaultIdleWindow
	}
	conn, err := cfg.Primary.Conn(ctx)
	if err != nil {
		return r, fmt.Errorf("wakebench: primary: %w", err)
	}
	defer conn.Close()
	if cfg.Exec == "" {
		cfg.Exec, cfg.Args = DefaultExec, nil
		if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS flypg_wakebench (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())"); err != nil {
			return r, fmt.Errorf("wakebench: create table: %w", err)
		}
	}
	var block, segment int64
	if err := conn.QueryRowContext(ctx, "SELECT current_setting('wal_block_size')::bigint, pg_size_bytes(current_setting('wal_segment_size'))").
		Scan(&block, &segment); err != nil {
		return r, fmt.Errorf("wakebench: primary: %w", err)
	}
	commit := func() (lsn.LSN, error) {
		if _, err := conn.ExecContext(ctx, cfg.Exec, cfg.Args...); err != nil {
			return 0, fmt.Errorf("wakebench: write: %w", err)
		}
		var l lsn.LSN
		if err := conn.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&l); err != nil {
			return 0, fmt.Errorf("wakebench: write: %w", err)
		}
		return l, nil
	}

	tr, err := lsn.NewTracker(cfg.Tracker)
	if err != nil {
		return r, err
	}
	defer tr.Close()
	target, err := commit() // warm up: connects, and replicates the table
	if err != nil {
		return r, err
	}
	if err := tr.Wait(ctx, target); err != nil {
		return r, fmt.Errorf("wakebench: warm-up wait: %w", err)
	}

	obs, err := observe(ctx, cfg.Tracker.DSN)
	if err != nil {
		return r, err
	}
	type wait struct {
		end         lsn.LSN // the target's record end
		start, done time.Time
	}
	waits := make([]wait, 0, cfg.N)
	before := tr.Stats()
	for i := range cfg.N {
		target, err := commit()
		if err != nil {
			obs.stop()
			return r, err
		}
		start := time.Now()
		if err := tr.Wait(ctx, target); err != nil {
			obs.stop()
			return r, fmt.Errorf("wakebench: wait %d: %w", i, err)
		}
		waits = append(waits, wait{recordEnd(target, uint64(block), uint64(segment)), start, time.Now()})
		if cfg.Progress != nil {
			cfg.Progress(i+1, cfg.N)
		}
	}
	after := tr.Stats()
	samples, err := obs.stop()
	if err != nil {
		return r, err
	}

	for _, w := range waits {
		r.Wait = append(r.Wait, w.done.Sub(w.start))
		i, _ := slices.BinarySearchFunc(samples, w.end, func(s sample, t lsn.LSN) int {
			switch {
			case s.walEnd < t:
				return -1
			case s.walEnd > t:
				return 1
			}
			return 0
		})
		if i == len(samples) {
			r.Unmatched++
			continue
		}
		from := samples[i].at
		if w.start.After(from) {
			from = w.start
		}
		r.Wake = append(r.Wake, w.done.Sub(from))
	}
	slices.Sort(r.Wait)
	slices.Sort(r.Wake)
	r.Polls = after.Polls - before.Polls
	r.PollsPerWait = float64(r.Polls) / float64(cfg.N)
	if s := r.Wait.Sum(); s > 0 {
		r.PollsPerSecond = float64(r.Polls) / s.Seconds()
	}
	r.Stats = after

	if cfg.IdleWindow > 0 {
		t := time.NewTimer(cfg.IdleWindow) // the idle window is the measurement itself
		select {
		case <-ctx.Done():
			t.Stop()
			return r, ctx.Err()
		case <-t.C:
		}
		r.IdlePolls = tr.Stats().Polls - after.Polls
		r.IdlePollsPerSecond = float64(r.IdlePolls) / cfg.IdleWindow.Seconds()
	}
	return r, nil
}

// recordEnd mirrors the tracker's rule for targets just past a WAL page
// header: such a target is reached at the page boundary.
func recordEnd(target lsn.LSN, block, segment uint64) lsn.LSN {
	switch off := uint64(target) % block; {
	case off == 24:
		return target - 24
	case off == 40 && uint64(target)%segment == 40:
		return target - 40
	}
	return target
}

// sample is one message of the observer's stream: the standby had WAL up
// to walEnd when the message was read at at.
type sample struct {
	walEnd lsn.LSN
	at     time.Time
}

type observer struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	samples []sample
	err     error
}

// observe opens the passive observer: a replication connection to the
// standby at dsn that records when each new WAL position arrived.
func observe(ctx context.Context, dsn string) (*observer, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("wakebench: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "flypg-wakebench-observer"
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	s, err := walstream.Connect(cctx, &cfg.Config)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("wakebench: observer (needs REPLICATION on the standby): %w", err)
	}
	octx, ocancel := context.WithCancel(ctx)
	o := &observer{cancel: ocancel}
	o.wg.Go(func() {
		defer s.Close()
		last := lsn.LSN(s.Start)
		for {
			ev, err := s.Next(octx)
			if err != nil {
				if octx.Err() == nil {
					o.err = fmt.Errorf("wakebench: observer: %w", err)
				}
				return
			}
			if l := lsn.LSN(ev.WALEnd); l > last {
				o.samples = append(o.samples, sample{l, ev.At})
				last = l
			}
			if ev.ReplyRequested {
				if err := s.SendStatus(); err != nil {
					o.err = fmt.Errorf("wakebench: observer: %w", err)
					return
				}
			}
		}
	})
	return o, nil
}

func (o *observer) stop() ([]sample, error) {
	o.cancel()
	o.wg.Wait()
	return o.samples, o.err
}
