package main

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/migrate"
)

// idleWindow is how long the bench watches an idle tracker for polls.
const idleWindow = 2 * time.Second

// wakeResult is one dedicated tracker's run.
type wakeResult struct {
	waits, delays, brackets durations
	polls                   uint64 // during the waits
	idlePolls               uint64 // during idleWindow with no waiter
	stats                   lsn.Stats
}

// 7. LSN wake-up delay and polling.
func (b *bench) wakeUp(ctx context.Context) (section, []goal, error) {
	l, n := b.l, b.n(150)

	// The lax node's own tracker, over every await of the run so far, and
	// idle now that nothing waits.
	before := l.lax.Stats().Tracker
	if err := sleep(ctx, idleWindow); err != nil {
		return section{}, nil, err
	}
	node := l.lax.Stats().Tracker
	nodeIdle := node.Polls - before.Polls

	poll, err := b.trackerRun(ctx, n)
	if err != nil {
		return section{}, nil, fmt.Errorf("client-side polls: %w", err)
	}
	// The server-side wait function, installed as a user's migration would.
	if err := migrate.Up(ctx, l.primary); err != nil {
		return section{}, nil, fmt.Errorf("install the wait function: %w", err)
	}
	if err := l.pg.Sync(ctx); err != nil {
		return section{}, nil, fmt.Errorf("wait for the wait function to replicate: %w", err)
	}
	fn, err := b.trackerRun(ctx, n)
	if err != nil {
		return section{}, nil, fmt.Errorf("wait function: %w", err)
	}
	if !fn.stats.UsingWaitFunction {
		return section{}, nil, fmt.Errorf("the tracker did not find the wait function")
	}

	perSec := func(polls uint64, d time.Duration) string {
		return fmt.Sprintf("%.0f", float64(polls)/d.Seconds())
	}
	row := func(name string, r wakeResult) []string {
		return []string{name, fmt.Sprint(len(r.waits)), msec(r.waits.p50()),
			msec(r.delays.p50()), msec(r.delays.p99()), "±" + msec(r.brackets.p50()),
			msec(r.stats.WakeDelayP50) + " / " + msec(r.stats.WakeDelayP99),
			fmt.Sprintf("%.1f", float64(r.polls)/float64(len(r.waits))),
			perSec(r.polls, r.waits.sum()), perSec(r.idlePolls, idleWindow)}
	}
	nodeWaits := node.Waits - node.Immediate
	sec := section{
		Title: "LSN tracker: wake-up after replay, and polling",
		Intro: fmt.Sprintf("A dedicated `lsn.Tracker` on lax's replica; each of %d iterations commits an INSERT on the primary "+
			"(from syd, so the WAL still has to cross the WAN: a wait of about RTT/2), reads `pg_current_wal_insert_lsn()` on the same "+
			"session and calls `Wait`. A separate connection polls `pg_last_wal_replay_lsn()` back to back to timestamp replay: "+
			"*wake after replay* is Wait's return minus the middle of the interval in which replay passed the target (± the half-width "+
			"of that interval, p50). *tracker-internal* is the tracker's own figure: from the answer of the poll that satisfied the "+
			"waiter to Wait's return. Idle: %v with no waiter.", n, idleWindow),
		Table: table{
			Header: []string{"tracker", "waits", "wait p50", "wake after replay p50", "p99", "uncertainty", "tracker-internal p50 / p99", "polls per wait", "polls/s while waiting", "polls/s idle"},
			Rows: [][]string{
				row("client-side polls (default)", poll),
				row("server-side wait function (migrate.Up)", fn),
				{"lax node, whole run (tables 1–6, incl. the saturated runs of 6)", fmt.Sprint(node.Waits), "", "", "", "",
					msec(node.WakeDelayP50) + " / " + msec(node.WakeDelayP99),
					fmt.Sprintf("%.2f", float64(node.Polls)/float64(max(node.Waits, 1))),
					"", perSec(nodeIdle, idleWindow)},
			},
		},
		Notes: []string{
			fmt.Sprintf("The lax node's tracker answered %d of its %d waits (%.0f%%) at once, without a query: the WAL travels to lax "+
				"alongside the write's answer, so replay is often past the LSN already when the answer arrives; the rest took "+
				"%.2f polls each on average.", node.Immediate, node.Waits, 100*float64(node.Immediate)/float64(max(node.Waits, 1)),
				float64(node.Polls)/float64(max(nodeWaits, 1))),
			"The observer connection busy-polls and takes a CPU of its own: on a small machine it slows everything else, so these delays are an upper bound.",
		},
	}
	return sec, []goal{{
		What: "7. no polling when idle", Target: "0 polls/s",
		Measured: perSec(poll.idlePolls+fn.idlePolls+nodeIdle, 3*idleWindow), Met: poll.idlePolls+fn.idlePolls+nodeIdle == 0,
	}}, nil
}

// trackerRun measures a fresh tracker on lax's replica over n commits made
// on the primary.
func (b *bench) trackerRun(ctx context.Context, n int) (wakeResult, error) {
	var r wakeResult
	tr, err := lsn.NewTracker(lsn.Config{DSN: b.l.pg.Replicas[0].DSN()})
	if err != nil {
		return r, err
	}
	defer tr.Close()
	conn, err := b.l.primary.Conn(ctx)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	commit := func() (lsn.LSN, error) {
		if _, err := conn.ExecContext(ctx, insertSQL, "wake"); err != nil {
			return 0, err
		}
		var text string
		if err := conn.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
			return 0, err
		}
		return lsn.Parse(text)
	}
	target, err := commit() // warm up: the tracker connects
	if err != nil {
		return r, err
	}
	if err := tr.Wait(ctx, target); err != nil {
		return r, err
	}

	obs, err := observeReplay(ctx, b.l.replica)
	if err != nil {
		return r, err
	}
	type wake struct {
		target lsn.LSN
		at     time.Time
	}
	var wakes []wake
	s0 := tr.Stats()
	for i := range n {
		target, err := commit()
		if err != nil {
			obs.stop()
			return r, err
		}
		t0 := time.Now()
		if err := tr.Wait(ctx, target); err != nil {
			obs.stop()
			return r, err
		}
		now := time.Now()
		r.waits = append(r.waits, now.Sub(t0))
		wakes = append(wakes, wake{target, now})
		b.prog.update(i+1, n)
	}
	samples, err := obs.stop()
	if err != nil {
		return r, err
	}
	s1 := tr.Stats()
	r.polls = s1.Polls - s0.Polls
	if err := sleep(ctx, idleWindow); err != nil {
		return r, err
	}
	r.stats = tr.Stats()
	r.idlePolls = r.stats.Polls - s1.Polls

	for _, w := range wakes {
		i, _ := slices.BinarySearchFunc(samples, w.target, func(s replaySample, t lsn.LSN) int {
			return cmpLSN(s.lsn, t)
		})
		// i == 0: replayed before the observer started; i == len: never
		// seen, e.g. a target just past a WAL page header, which replay
		// reports as the boundary (see package lsn).
		if i == 0 || i == len(samples) {
			continue
		}
		s := samples[i]
		half := s.recv.Sub(s.prevSend) / 2
		r.delays = append(r.delays, w.at.Sub(s.prevSend.Add(half)))
		r.brackets = append(r.brackets, half)
	}
	if len(r.delays) == 0 {
		return r, fmt.Errorf("no wake-up could be matched to an observed replay")
	}
	return r, nil
}

func cmpLSN(a, b lsn.LSN) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// replaySample is one change of the replay position seen by the observer:
// replay reached lsn after the observer's previous query was sent
// (prevSend) and before this query's answer arrived (recv).
type replaySample struct {
	lsn            lsn.LSN
	prevSend, recv time.Time
}

type observer struct {
	done    atomic.Bool
	wg      sync.WaitGroup
	samples []replaySample
	err     error
}

// observeReplay polls the replica's replay position as fast as one
// connection allows, independently of any tracker, to timestamp replay.
func observeReplay(ctx context.Context, replica *sql.DB) (*observer, error) {
	conn, err := replica.Conn(ctx)
	if err != nil {
		return nil, err
	}
	o := &observer{}
	o.wg.Go(func() {
		defer conn.Close()
		var last lsn.LSN
		lastSend := time.Now()
		for !o.done.Load() {
			send := time.Now()
			var text string
			if err := conn.QueryRowContext(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&text); err != nil {
				o.err = fmt.Errorf("observer: %w", err)
				return
			}
			cur, err := lsn.Parse(text)
			if err != nil {
				o.err = fmt.Errorf("observer: %w", err)
				return
			}
			if cur != last {
				o.samples = append(o.samples, replaySample{lsn: cur, prevSend: lastSend, recv: time.Now()})
				last = cur
			}
			lastSend = send
		}
	})
	return o, nil
}

func (o *observer) stop() ([]replaySample, error) {
	o.done.Store(true)
	o.wg.Wait()
	return o.samples, o.err
}

// sleep waits d: here waiting is the measurement (an idle window), not a
// stand-in for synchronisation.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
