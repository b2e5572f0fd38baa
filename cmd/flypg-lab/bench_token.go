package main

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/flypg/flypg"
)

// readWithToken is readOn under the causal token tok, parsed by n as
// flypghttp's middleware does on each request.
func readWithToken(n *flypg.Node, db *sql.DB, tok string) func(context.Context, int) error {
	read := readOn(db)
	return func(ctx context.Context, i int) error {
		l, err := n.ParseToken(tok)
		if err != nil {
			return fmt.Errorf("parse token: %w", err)
		}
		return read(flypg.AfterLSN(ctx, l), i)
	}
}

// countByID reads whether bench_ins has the row id: false is a stale read.
func countByID(ctx context.Context, db *sql.DB, id int64) (bool, error) {
	var c int
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM bench_ins WHERE id = $1", id).Scan(&c)
	return c > 0, err
}

// 5. Causal tokens.
func (b *bench) tokens(ctx context.Context) (section, []goal, error) {
	l, n := b.l, b.n(1000)

	// A token for a write lax has waited for: lax's replica is current for
	// it; ams's is once it has replayed it too.
	tctx, tr := flypg.Track(ctx)
	if _, err := l.laxDB.ExecContext(tctx, insertSQL, "token"); err != nil {
		return section{}, nil, err
	}
	tok := l.lax.Token(tr.LSN())
	if tok == "" {
		return section{}, nil, fmt.Errorf("lax made no token for %v", tr.LSN())
	}
	if err := l.amsPG().WaitReplayed(ctx, tr.LSN().String()); err != nil {
		return section{}, nil, err
	}
	r, err := b.measure(ctx,
		variant{name: "lax", n: n, op: readOn(l.laxDB)},
		variant{name: "lax, token", n: n, op: readWithToken(l.lax, l.laxDB, tok)},
		variant{name: "ams", n: n, op: readOn(l.amsDB)},
		variant{name: "ams, token", n: n, op: readWithToken(l.ams, l.amsDB, tok)},
	)
	if err != nil {
		return section{}, nil, err
	}
	laxPlain, laxTok, amsPlain, amsTok := r[0].lat, r[1].lat, r[2].lat, r[3].lat

	// A write in lax, then at once the next request in ams, whose replica
	// lags: once without the token, once with it.
	nl := b.n(20)
	primaryReads0 := l.ams.Stats().PrimaryReads
	var without, with durations
	var staleWithout, staleWith int
	for i := -warmOps; i < nl; i++ {
		tctx, tr := flypg.Track(ctx)
		var id int64
		if err := l.laxDB.QueryRowContext(tctx, "INSERT INTO bench_ins (v) VALUES ($1) RETURNING id", fmt.Sprint("tok", b.seq.Add(1))).Scan(&id); err != nil {
			return section{}, nil, err
		}
		tok := l.lax.Token(tr.LSN())

		t0 := time.Now()
		seen, err := countByID(ctx, l.amsDB, id)
		if err != nil {
			return section{}, nil, err
		}
		d0 := time.Since(t0)

		t1 := time.Now()
		at, err := l.ams.ParseToken(tok)
		if err != nil {
			return section{}, nil, fmt.Errorf("ams: parse lax's token: %w", err)
		}
		seenTok, err := countByID(flypg.AfterLSN(ctx, at), l.amsDB, id)
		if err != nil {
			return section{}, nil, err
		}
		d1 := time.Since(t1)
		if i < 0 {
			continue // warm-up
		}
		without, with = append(without, d0), append(with, d1)
		if !seen {
			staleWithout++
		}
		if !seenTok {
			staleWith++
		}
		b.prog.update(i+1, nl)
	}
	primaryReads := l.ams.Stats().PrimaryReads - primaryReads0

	extra := func(d, base durations) string { return signedMsec(d.p50() - base.p50()) }
	stale := func(k, of int) string { return fmt.Sprintf("%d/%d", k, of) }
	sec := section{
		Title: "Causal tokens: read-your-writes in another region",
		Intro: fmt.Sprintf("`%s` (concurrency 1, %d each, interleaved) with and without a causal token — parsed from its text each time "+
			"(`Node.ParseToken`, HMAC check) and applied with `flypg.AfterLSN`, as flypghttp's middleware does — on a node whose replica "+
			"has already replayed the token's write; then %d times a write in lax (INSERT … RETURNING id) followed at once by the next "+
			"request in ams, whose replica replays %v behind the primary, reading that row without and with the write's token.",
			readSQL, n, nl, l.amsDelay),
		Table: table{Header: []string{"read", "p50", "p99", "extra over a plain read (p50)", "stale reads"}, Rows: [][]string{
			latencyRow("lax, plain", laxPlain, "", ""),
			latencyRow("lax, with a token (replica current)", laxTok, extra(laxTok, laxPlain), ""),
			latencyRow("ams, plain", amsPlain, "", ""),
			latencyRow("ams, with a token (replica current)", amsTok, extra(amsTok, amsPlain), ""),
			latencyRow("ams, right after the write in lax, no token", without, "", stale(staleWithout, nl)),
			latencyRow(fmt.Sprintf("ams, right after the write in lax, with its token (replica %v behind)", l.amsDelay), with, extra(with, amsPlain), stale(staleWith, nl)),
		}},
		Notes: []string{
			fmt.Sprintf("On a current replica a token costs %s (lax) and %s (ams) at p50: the HMAC check and a tracker answer from memory, no query.",
				extra(laxTok, laxPlain), extra(amsTok, amsPlain)),
			fmt.Sprintf("On a lagging replica the read waits until the replica has replayed the write: here the rest of ams's %v replay delay "+
				"(p50 %s). A wait longer than AwaitTimeout would send the read to the primary instead (ams sent %d reads to the primary here). "+
				"Without the token %d of %d reads missed the user's own write.", l.amsDelay, msec(with.p50()), primaryReads, staleWithout, nl),
		},
	}
	return sec, []goal{{
		What: "5. stale reads with a causal token, next request in another region", Target: "0",
		Measured: stale(staleWith, nl), Met: staleWith == 0,
	}}, nil
}
