package main

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// 7. Throughput of forwarded inserts.
func (b *bench) throughput(ctx context.Context) (section, []goal, error) {
	l := b.l
	// Local latency, for the latency-bound column.
	lo, err := b.measure(ctx, variant{name: "local", n: b.n(50), op: b.insertOn(l.primary, false)})
	if err != nil {
		return section{}, nil, err
	}
	t := table{Header: []string{"concurrency", "operations", "flypg ops/s", "direct ops/s", "flypg / direct", "latency bound c / (RTT + local)", "primary sessions opened (flypg / direct)"}}
	dbs := []*sql.DB{l.laxDB, l.direct}
	var worst struct {
		conc     int
		ratio    float64
		sessions [2]int64
		ops      int
	}
	worst.ratio = math.Inf(1)
	for ci, c := range []struct{ conc, ops int }{{1, 100}, {16, 640}, {64, 1920}} {
		ops := max(b.n(c.ops), c.conc)
		// Saturating runs cannot be interleaved; alternate which goes
		// first instead.
		order := []int{0, 1}
		if ci%2 == 1 {
			order = []int{1, 0}
		}
		var (
			rates    [2]float64
			sessions [2]int64
		)
		for _, k := range order {
			op := b.insertOn(dbs[k], false)
			// Warm up at this concurrency: the pool opens its connections
			// now, not inside the timed run.
			if _, err := b.runConcurrent(ctx, c.conc, 2*c.conc, op, false); err != nil {
				return section{}, nil, err
			}
			s0, err := b.primarySessions(ctx)
			if err != nil {
				return section{}, nil, err
			}
			rate, err := b.runConcurrent(ctx, c.conc, ops, op, true)
			if err != nil {
				return section{}, nil, err
			}
			s1, err := b.primarySessions(ctx)
			if err != nil {
				return section{}, nil, err
			}
			rates[k], sessions[k] = rate, s1-s0
		}
		if r := rates[0] / rates[1]; r < worst.ratio {
			worst.conc, worst.ratio, worst.sessions, worst.ops = c.conc, r, sessions, ops
		}
		bound := float64(c.conc) / (l.rtt + lo[0].lat.p50()).Seconds()
		t.Rows = append(t.Rows, []string{
			fmt.Sprint(c.conc), fmt.Sprint(ops),
			fmt.Sprintf("%.0f", rates[0]), fmt.Sprintf("%.0f", rates[1]),
			times(rates[0] / rates[1]), fmt.Sprintf("%.0f", bound),
			fmt.Sprintf("%d / %d", sessions[0], sessions[1]),
		})
	}
	notes := []string{
		"flypg multiplexes every caller over one link connection and waits for replay with one shared poller; direct needs one connection per concurrent caller.",
	}
	if worst.ratio < 0.9 {
		notes = append(notes, fmt.Sprintf("**Not on par at concurrency %d** (%.2f× direct). In its %d forwarded inserts the primary "+
			"opened %d new sessions for flypg against %d for direct (the last column): sessions opened during a timed run mean a pool "+
			"that closed connections after use and reopened them, a PostgreSQL backend start each time.",
			worst.conc, worst.ratio, worst.ops, worst.sessions[0], worst.sessions[1]))
		b.findings = append(b.findings, fmt.Sprintf("Not a stated goal, but not met either: forwarded-insert throughput at concurrency %d is %.2f× direct's "+
			"(section 7).", worst.conc, worst.ratio))
	}
	notes = append(notes, fmt.Sprintf("The machine has %d CPUs shared by the three PostgreSQL servers, the three nodes, the WAN proxies and the load generator: "+
		"at high concurrency the CPU, not the WAN, is the limit.", runtime.NumCPU()))
	sec := section{
		Title: "Throughput of forwarded inserts",
		Intro: "Autocommit `" + insertSQL + "` from lax by c concurrent callers: flypg (forwarded, awaited) vs direct pgx with a pool of c connections " +
			"across the WAN. Operations per second over a fixed number of operations, after a warm-up at the same concurrency. The last column " +
			"counts sessions the primary opened during the timed run (pg_stat_database.sessions): a warm pool opens none (the lab's own " +
			"statistics query accounts for about one).",
		Table: t,
		Notes: notes,
	}
	return sec, nil, nil
}

// primarySessions is the number of sessions the primary has opened so far
// (PostgreSQL 14+; the statistics are flushed when a session ends, which is
// what this counts). A pool that keeps its connections opens none during a
// timed run.
func (b *bench) primarySessions(ctx context.Context) (int64, error) {
	var n int64
	if err := b.l.primary.QueryRowContext(ctx, "SELECT pg_stat_force_next_flush()").Err(); err != nil {
		return 0, fmt.Errorf("flush statistics: %w", err)
	}
	err := b.l.primary.QueryRowContext(ctx, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count primary sessions: %w", err)
	}
	return n, nil
}

// runConcurrent runs ops operations on conc goroutines and returns the
// rate; with report it drives the progress line.
func (b *bench) runConcurrent(ctx context.Context, conc, ops int, op func(context.Context, int) error, report bool) (float64, error) {
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= ops || ctx.Err() != nil {
					return
				}
				if err := op(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				if d := done.Add(1); report {
					b.prog.update(int(d), ops)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(ops) / took.Seconds(), nil
}
