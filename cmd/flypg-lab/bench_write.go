package main

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/flypg/flypg"
)

const insertSQL = "INSERT INTO bench_ins (v) VALUES ($1)"

func (b *bench) insertOn(db *sql.DB, noAwait bool) func(context.Context, int) error {
	return func(ctx context.Context, _ int) error {
		if noAwait {
			ctx = flypg.NoAwait(ctx)
		}
		_, err := db.ExecContext(ctx, insertSQL, fmt.Sprint("v", b.seq.Add(1)))
		return err
	}
}

func latencyRow(name string, d durations, extra ...string) []string {
	return append([]string{name, msec(d.p50()), msec(d.p99())}, extra...)
}

// tripsText is a variant's measured round trips per operation.
func tripsText(s samples) string { return fmt.Sprintf("%.2f", s.meanTrips()) }

// 1. Autocommit INSERT from lax.
func (b *bench) insert(ctx context.Context) (section, []goal, error) {
	l, n := b.l, b.n(200)
	r, err := b.measure(ctx,
		variant{name: "flypg", n: n, op: b.insertOn(l.laxDB, false), trips: nodeTrips(l.lax)},
		variant{name: "flypg NoAwait", n: n, op: b.insertOn(l.laxDB, true), trips: nodeTrips(l.lax)},
		variant{name: "direct", n: n, op: b.insertOn(l.direct, false), trips: b.proxyTrips(proxyDirect)},
		variant{name: "local on primary", n: n, op: b.insertOn(l.primary, false)},
	)
	if err != nil {
		return section{}, nil, err
	}
	fl, na, di, lo := r[0], r[1], r[2], r[3]
	ideal := l.rtt + lo.lat.p50()
	rel := func(d durations) string { return times(ratio(d.p50(), ideal)) }
	t := table{Header: []string{"from lax", "p50", "p99", "p50 / ideal", "WAN round trips"}, Rows: [][]string{
		latencyRow("flypg (forward + await)", fl.lat, rel(fl.lat), tripsText(fl)),
		latencyRow("flypg NoAwait", na.lat, rel(na.lat), tripsText(na)),
		latencyRow("direct (pgx across the WAN)", di.lat, rel(di.lat), tripsText(di)),
		{"ideal (RTT + local p50)", msec(ideal), "", "1.00×", "1"},
		latencyRow("(local on the primary)", lo.lat, "", "0"),
	}}
	got := ratio(fl.lat.p50(), ideal)
	sec := section{
		Title: "Autocommit INSERT from lax",
		Intro: fmt.Sprintf("`%s` in autocommit, %d times each, concurrency 1.", insertSQL, n),
		Table: t,
		Notes: []string{
			fmt.Sprintf("flypg / ideal = %.3f at p50 (goal ≤ 1.05): one WAN round trip; the WAL crosses the WAN while the answer does.", got),
			fmt.Sprintf("The wait for replay, measured as the Wait call's own duration (%d waits, through flypg's Observer hook): "+
				"p50 %s, p99 %s — by the time the answer is back in lax, the WAL usually is too.",
				len(fl.awaits), msec(fl.awaits.p50()), msec(fl.awaits.p99())),
		},
	}
	return sec, []goal{{
		What: "1. forwarded INSERT vs ideal", Target: "flypg / ideal ≤ 1.05",
		Measured: fmt.Sprintf("%.3f", got), Met: got <= 1.05,
	}}, nil
}

const readSQL = "SELECT v FROM bench_kv WHERE id = $1"

func readOn(db *sql.DB) func(context.Context, int) error {
	return func(ctx context.Context, i int) error {
		var v string
		return db.QueryRowContext(ctx, readSQL, (i+1000)%1000+1).Scan(&v)
	}
}

// 2. PK read from lax.
func (b *bench) pkRead(ctx context.Context) (section, []goal, error) {
	l, n := b.l, b.n(3000)
	r, err := b.measure(ctx,
		variant{name: "flypg", n: n, op: readOn(l.laxDB)},
		variant{name: "pgx on the replica", n: n, op: readOn(l.replica)},
		variant{name: "direct", n: b.n(100), op: readOn(l.direct)},
	)
	if err != nil {
		return section{}, nil, err
	}
	fl, px, di := r[0].lat, r[1].lat, r[2].lat
	rel := func(d durations) string { return times(ratio(d.p50(), px.p50())) }
	got := ratio(fl.p50(), px.p50())
	sec := section{
		Title: "Primary-key read from lax",
		Intro: fmt.Sprintf("`%s`, concurrency 1: %d reads through flypg and through raw pgx on the replica, %d direct.", readSQL, n, len(di)),
		Table: table{Header: []string{"from lax", "p50", "p99", "p50 / pgx on replica"}, Rows: [][]string{
			latencyRow("flypg (local replica)", fl, rel(fl)),
			latencyRow("pgx on the replica", px, rel(px)),
			latencyRow("direct (pgx across the WAN)", di, rel(di)),
		}},
		Notes: []string{fmt.Sprintf("flypg's overhead on a read: %.3f× raw pgx at p50, %.3f× at p99 (goal ≤ 1.05). "+
			"Sub-millisecond latencies on a shared machine move by several percent between runs.",
			got, ratio(fl.p99(), px.p99()))},
	}
	return sec, []goal{{
		What: "2. local read overhead", Target: "flypg / pgx ≤ 1.05",
		Measured: fmt.Sprintf("%.3f", got), Met: got <= 1.05,
	}}, nil
}

// 3. Read-after-write.
func (b *bench) readAfterWrite(ctx context.Context) (section, []goal, error) {
	l, n := b.l, b.n(100)
	stale := make([]int, 3)
	raw := func(k int, write, read *sql.DB) func(context.Context, int) error {
		return func(ctx context.Context, i int) error {
			var id int64
			if err := write.QueryRowContext(ctx, "INSERT INTO bench_ins (v) VALUES ($1) RETURNING id", fmt.Sprint("raw", b.seq.Add(1))).Scan(&id); err != nil {
				return err
			}
			var c int
			if err := read.QueryRowContext(ctx, "SELECT count(*) FROM bench_ins WHERE id = $1", id).Scan(&c); err != nil {
				return err
			}
			if c == 0 && i >= 0 {
				stale[k]++
			}
			return nil
		}
	}
	r, err := b.measure(ctx,
		variant{name: "flypg", n: n, op: raw(0, l.laxDB, l.laxDB), trips: nodeTrips(l.lax)},
		variant{name: "direct", n: n, op: raw(1, l.direct, l.direct), trips: b.proxyTrips(proxyDirect)},
		variant{name: "naive split", n: n, op: raw(2, l.direct, l.replica), trips: b.proxyTrips(proxyDirect)},
	)
	if err != nil {
		return section{}, nil, err
	}
	staleText := func(k int) string {
		return fmt.Sprintf("%d/%d (%.0f%%)", stale[k], n, 100*float64(stale[k])/float64(n))
	}
	sec := section{
		Title: "Read-after-write",
		Intro: fmt.Sprintf("INSERT … RETURNING id, then at once `SELECT count(*) … WHERE id = $1`, %d times each, concurrency 1. A read that does not find the row is stale.", n),
		Table: table{Header: []string{"from lax", "p50 (write + read)", "p99", "WAN round trips", "stale reads"}, Rows: [][]string{
			latencyRow("flypg (write forwarded, read on the replica)", r[0].lat, tripsText(r[0]), staleText(0)),
			latencyRow("direct (both on the primary, across the WAN)", r[1].lat, tripsText(r[1]), staleText(1)),
			latencyRow("naive split (write direct, read the replica)", r[2].lat, tripsText(r[2]), staleText(2)),
		}},
		Notes: []string{
			"flypg costs one WAN round trip, like the naive split, and is never stale; direct is never stale but pays two round trips. " +
				"The naive split's stale reads are reads that ran before the replica had replayed the write: the WAL leaves the primary " +
				"with the commit and crosses the WAN alongside the answer, so it is a race, lost whenever replay is slower than the client.",
			fmt.Sprintf("flypg's wait for replay (the Wait call's own duration): p50 %s, p99 %s.", msec(r[0].awaits.p50()), msec(r[0].awaits.p99())),
		},
		Chart: &chart{
			File:  "read-after-write.svg",
			Title: "Read-after-write from lax: latency distribution (write + read)",
			Series: []series{
				{Name: "flypg", Lat: r[0].lat},
				{Name: "direct", Lat: r[1].lat},
				{Name: fmt.Sprintf("naive split (%d%% stale)", 100*stale[2]/n), Lat: r[2].lat},
			},
		},
	}
	return sec, []goal{{
		What: "3. stale reads through flypg", Target: "0",
		Measured: fmt.Sprint(stale[0]), Met: stale[0] == 0,
	}}, nil
}

// tenInsertsProc runs ten inserts next to the primary, in one transaction.
const tenInsertsProc = "bench.insert_many"

type insertMany struct{ Values []string }
type insertManyResult struct{ N int }

func init() {
	flypg.RegisterProc(tenInsertsProc, func(ctx context.Context, db *sql.DB, req insertMany) (insertManyResult, error) {
		return insertManyResult{N: len(req.Values)}, insertTx(ctx, db, req.Values)
	})
}

func insertTx(ctx context.Context, db *sql.DB, values []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, v := range values {
		if _, err := tx.ExecContext(ctx, insertSQL, v); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// 6. Ten inserts.
func (b *bench) tenInserts(ctx context.Context) (section, []goal, error) {
	l, n := b.l, b.n(20)
	values := func() []string {
		v := make([]string, 10)
		for i := range v {
			v[i] = fmt.Sprint("ten", b.seq.Add(1))
		}
		return v
	}
	txOn := func(db *sql.DB) func(context.Context, int) error {
		return func(ctx context.Context, _ int) error { return insertTx(ctx, db, values()) }
	}
	r, err := b.measure(ctx,
		variant{name: "flypg remote transaction", n: n, op: txOn(l.laxDB), trips: nodeTrips(l.lax)},
		variant{name: "flypg pipelined remote transaction", n: n, op: func(ctx context.Context, _ int) error {
			return insertTx(flypg.Pipeline(ctx), l.laxDB, values())
		}, trips: nodeTrips(l.lax)},
		variant{name: "CallPrimary", n: n, op: func(ctx context.Context, _ int) error {
			_, err := flypg.CallPrimary[insertMany, insertManyResult](ctx, l.lax, tenInsertsProc, insertMany{Values: values()})
			return err
		}, trips: nodeTrips(l.lax)},
		variant{name: "direct transaction", n: n, op: func(ctx context.Context, _ int) error {
			vs := values()
			stmts := make([]stmt, len(vs))
			for i, v := range vs {
				stmts[i] = stmt{insertSQL, []any{v}}
			}
			return directTx(ctx, l.direct, beginWithFirst, stmts)
		}, trips: b.proxyTrips(proxyDirect)},
		variant{name: "local on primary", n: n, op: txOn(l.primary)},
	)
	if err != nil {
		return section{}, nil, err
	}
	tx, pl, cp, di, lo := r[0], r[1], r[2], r[3], r[4]
	ideal := l.rtt + lo.lat.p50()
	rel := func(d durations) string { return times(ratio(d.p50(), ideal)) }
	sec := section{
		Title: "Ten inserts",
		Intro: fmt.Sprintf("Ten `%s` in one transaction (database/sql BeginTx … Commit through flypg, or one procedure call; pgx with BEGIN in a batch with the first INSERT direct), %d times each, concurrency 1.", insertSQL, n),
		Table: table{Header: []string{"from lax", "p50", "p99", "WAN round trips", "p50 / ideal"}, Rows: [][]string{
			latencyRow("flypg remote transaction (BeginTx … Commit)", tx.lat, tripsText(tx), rel(tx.lat)),
			latencyRow("flypg pipelined remote transaction (BeginTx(flypg.Pipeline(ctx), nil))", pl.lat, tripsText(pl), rel(pl.lat)),
			latencyRow("flypg CallPrimary (procedure next to the primary)", cp.lat, tripsText(cp), rel(cp.lat)),
			latencyRow("direct transaction (BEGIN with the first INSERT)", di.lat, tripsText(di), rel(di.lat)),
			{"ideal (RTT + local p50)", msec(ideal), "", "1", "1.00×"},
			latencyRow("(local transaction on the primary)", lo.lat, "0", ""),
		}},
		Notes: []string{fmt.Sprintf("CallPrimary is %.1f× and the pipelined transaction %.1f× faster than the statement-by-statement remote transaction at p50, "+
			"and %.1f× and %.1f× faster than direct.",
			ratio(tx.lat.p50(), cp.lat.p50()), ratio(tx.lat.p50(), pl.lat.p50()), ratio(di.lat.p50(), cp.lat.p50()), ratio(di.lat.p50(), pl.lat.p50()))},
	}
	return sec, nil, nil
}
