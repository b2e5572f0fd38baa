package main

import (
	"context"
	"fmt"
	"time"

	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/lsn/wakebench"
)

// idleWindow is how long the bench watches an idle tracker for polls.
const idleWindow = 2 * time.Second

// 8. LSN wake-up delay and polling, with lsn/wakebench.
func (b *bench) wakeUp(ctx context.Context) (section, []goal, error) {
	l, n := b.l, b.n(150)

	// The lax node's own tracker, over every wait of the run so far, and
	// idle now that nothing waits.
	before := l.lax.Stats().Tracker
	if err := sleep(ctx, idleWindow); err != nil {
		return section{}, nil, err
	}
	node := l.lax.Stats().Tracker
	nodeIdle := node.Polls - before.Polls

	run := func(cfg lsn.Config) (wakebench.Result, error) {
		cfg.DSN = l.laxPG().DSN()
		return wakebench.Run(ctx, wakebench.Config{
			Tracker: cfg, Primary: l.primary, N: n, IdleWindow: idleWindow,
			Progress: b.prog.update,
		})
	}
	poll, err := run(lsn.Config{DisableWALSignal: true})
	if err != nil {
		return section{}, nil, fmt.Errorf("client-side polls: %w", err)
	}
	sig, err := run(lsn.Config{})
	if err != nil {
		return section{}, nil, fmt.Errorf("WAL-arrival signal: %w", err)
	}
	if sig.Stats.SignalConnects == 0 {
		return section{}, nil, fmt.Errorf("the tracker never opened its WAL-arrival signal (mode %q): the lab's replica should allow it", sig.Stats.Mode)
	}

	row := func(name string, r wakebench.Result) []string {
		return []string{name, fmt.Sprint(len(r.Wait)),
			msec(r.Wait.Quantile(0.5)), msec(r.Wait.Quantile(0.99)),
			msec(r.Wake.Quantile(0.5)), msec(r.Wake.Quantile(0.99)),
			fmt.Sprintf("%.1f", r.PollsPerWait), fmt.Sprintf("%.0f", r.PollsPerSecond), fmt.Sprintf("%.0f", r.IdlePollsPerSecond)}
	}
	sec := section{
		Title: "LSN tracker: wake-up after the WAL reaches the standby, and polling",
		Intro: fmt.Sprintf("lsn/wakebench on lax's replica: each of %d iterations commits an INSERT on the primary (from syd, so the WAL "+
			"still has to cross the WAN: a wait of about RTT/2), reads `pg_current_wal_insert_lsn()` on the same session and calls `Wait` "+
			"on a fresh tracker. *Wait* is the Wait call's own duration. *Wake after WAL delivery* runs from the moment the standby had "+
			"the write's WAL — taken from a passive observer, a replication connection to the standby that sleeps until its walsender "+
			"sends, so no busy-polling client keeps a CPU awake — to Wait's return (%d and %d waits matched). Idle: %v with no waiter "+
			"after the last wait.", n, len(poll.Wake), len(sig.Wake), idleWindow),
		Table: table{
			Header: []string{"tracker", "waits", "Wait p50", "Wait p99", "wake after WAL delivery at the standby p50", "p99",
				"polls per wait", "polls/s while waiting", "polls/s idle"},
			Rows: [][]string{
				row("client-side polls (`lsn.Config{DisableWALSignal: true}`)", poll),
				row("WAL-arrival signal (default)", sig),
			},
		},
		Notes: []string{
			fmt.Sprintf("The signal wakes the waiter %s after the WAL's arrival at p50, against %s for client-side polls (%.1f× sooner), "+
				"with %.1f polls per wait instead of %.1f (%.0f/s instead of %.0f/s while waiting); neither polls while idle.",
				msec(sig.Wake.Quantile(0.5)), msec(poll.Wake.Quantile(0.5)),
				ratio(poll.Wake.Quantile(0.5), sig.Wake.Quantile(0.5)),
				sig.PollsPerWait, poll.PollsPerWait, sig.PollsPerSecond, poll.PollsPerSecond),
			fmt.Sprintf("The lax node's own tracker over tables 1–7 (incl. the saturated runs of 7): %d waits, %d answered at once without a "+
				"query (%.0f%%: the WAL travels alongside the write's answer, so replay is often past the LSN when the answer arrives), "+
				"%.2f polls per wait that had to wait, %d signal connections opened (%d wake-ups by the signal), %.0f polls/s in %v idle.",
				node.Waits, node.Immediate, 100*float64(node.Immediate)/float64(max(node.Waits, 1)), node.PollsPerWait(),
				node.SignalConnects, node.SignalWakeups, float64(nodeIdle)/idleWindow.Seconds(), idleWindow),
		},
	}
	idle := poll.IdlePolls + sig.IdlePolls + nodeIdle
	wake := sig.Wake.Quantile(0.5)
	return sec, []goal{
		{What: "8. wake-up after WAL delivery (signal), p50", Target: "< 0.3 ms",
			Measured: msec(wake), Met: wake < 300*time.Microsecond},
		{What: "8. polls/s while waiting (signal vs client polls)", Target: "≤ client polls'",
			Measured: fmt.Sprintf("%.0f vs %.0f", sig.PollsPerSecond, poll.PollsPerSecond), Met: sig.PollsPerSecond <= poll.PollsPerSecond},
		{What: "8. no polling when idle", Target: "0 polls/s",
			Measured: fmt.Sprintf("%.0f", float64(idle)/(3*idleWindow).Seconds()), Met: idle == 0},
	}, nil
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
