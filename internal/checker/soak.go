package checker

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the baseline's driver

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

// SoakConfig configures Soak. The zero value is `flypg-lab soak`'s load:
// 1,000 clients for 60 s at a 20 ms round trip.
type SoakConfig struct {
	// Clients is the number of concurrent clients in the replica region.
	// Default 1000.
	Clients int
	// Duration is how long each of the two loads (flypg, then direct)
	// runs. Default 60s.
	Duration time.Duration
	// DirectDuration is how long the direct baseline runs. Default
	// Duration.
	DirectDuration time.Duration
	// SkipDirect leaves the baseline out.
	SkipDirect bool
	// RTT is the simulated round trip between the regions, which the WAL
	// stream, flypg's link and the baseline's connections all cross.
	// Default 20ms.
	RTT time.Duration
	// Mix weighs the operations. Default DefaultMix().
	Mix Mix
	// MaxConns bounds each pool the clients share (flypg's database in lax,
	// and the baseline's pgx pool), as an app would. Default 64.
	MaxConns int
	// OpTimeout is each operation's deadline. Default 10s: a thousand
	// clients queue for 64 connections.
	OpTimeout time.Duration
	// BinDir is the PostgreSQL binaries' directory (default: pgcluster's
	// search, $FLYPG_PG_BIN first).
	BinDir string
	// KeepSignals leaves SIGINT/SIGTERM to the caller (see
	// pgcluster.Options.KeepSignals), which then must cancel ctx.
	KeepSignals bool
	// Logf receives progress lines.
	Logf func(format string, args ...any)
	// Logger receives the nodes' logs. Default: discarded.
	Logger *slog.Logger
}

func (c SoakConfig) withDefaults() SoakConfig {
	if c.Clients <= 0 {
		c.Clients = 1000
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.DirectDuration <= 0 {
		c.DirectDuration = c.Duration
	}
	if c.RTT <= 0 {
		c.RTT = 20 * time.Millisecond
	}
	if c.Mix.total() == 0 {
		c.Mix = DefaultMix()
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 64
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// SoakReport is a soak's result: the checker's reports for flypg and for
// the same load sent direct, and how they compare.
type SoakReport struct {
	PostgreSQL string        `json:"postgresql"`
	Clients    int           `json:"clients"`
	RTT        time.Duration `json:"rtt"`
	MaxConns   int           `json:"max_conns"`
	Flypg      *Report       `json:"flypg"`
	Direct     *Report       `json:"direct,omitempty"`
	// Stats are the replica-region node's counters at the end.
	Stats flypg.Stats `json:"stats"`
}

// Err reports the violations of either run, and goroutines that did not
// stay flat after warm-up in the flypg run.
func (r *SoakReport) Err() error {
	var errs []error
	if r.Flypg != nil {
		errs = append(errs, r.Flypg.Err(), r.Flypg.FlatGoroutines())
	}
	if r.Direct != nil {
		errs = append(errs, r.Direct.Err())
	}
	return errors.Join(errs...)
}

// FlatGoroutines fails when the goroutines grew after warm-up: more at the
// end than at the middle of the run, beyond 10% and 50 (a client between
// two operations owns none; a pile-up grows with time).
func (r *Report) FlatGoroutines() error {
	_, mid, end := r.Curve()
	limit := mid.Goroutines + mid.Goroutines/10 + 50
	if end.Goroutines > limit {
		return fmt.Errorf("checker: goroutines grew after warm-up: %d at %v, %d at %v (limit %d)",
			mid.Goroutines, mid.At.Round(time.Second), end.Goroutines, end.At.Round(time.Second), limit)
	}
	return nil
}

// Ratios compares flypg with the baseline: latency ratios (flypg/direct)
// of successful writes and reads at p50 and p99, and the throughput ratio
// of successful operations.
func (r *SoakReport) Ratios() (writeP50, writeP99, readP50, readP99, throughput float64) {
	if r.Direct == nil || r.Flypg == nil {
		return
	}
	ratio := func(a, b time.Duration) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	f, d := r.Flypg, r.Direct
	writeP50, writeP99 = ratio(f.WriteLatency.P50, d.WriteLatency.P50), ratio(f.WriteLatency.P99, d.WriteLatency.P99)
	readP50, readP99 = ratio(f.ReadLatency.P50, d.ReadLatency.P50), ratio(f.ReadLatency.P99, d.ReadLatency.P99)
	if d.Throughput > 0 {
		throughput = f.Throughput / d.Throughput
	}
	return
}

// WriteMarkdown writes the report as markdown: totals, latency and
// throughput against the baseline, the memory and goroutine curve, and
// any violations.
func (r *SoakReport) WriteMarkdown(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	p("# flypg soak: %d clients in lax, %v round trip, PostgreSQL %s\n\n", r.Clients, r.RTT, r.PostgreSQL)
	p("| | flypg (lax → replica / link) | direct (pgx lax → primary) | ratio |\n|---|---|---|---|\n")
	row := func(name string, f, d any, ratio float64) {
		switch {
		case r.Direct == nil:
			p("| %s | %v | – | – |\n", name, f)
		case ratio < 0:
			p("| %s | %v | %v | |\n", name, f, d)
		default:
			p("| %s | %v | %v | %.2f |\n", name, f, d, ratio)
		}
	}
	wp50, wp99, rp50, rp99, thr := r.Ratios()
	d := r.Direct
	if d == nil {
		d = &Report{}
	}
	f := r.Flypg
	row("duration", f.Elapsed.Round(time.Millisecond), d.Elapsed.Round(time.Millisecond), -1)
	row("operations (writes / reads)", fmt.Sprintf("%d (%d / %d)", f.Ops, f.Writes, f.Reads), fmt.Sprintf("%d (%d / %d)", d.Ops, d.Writes, d.Reads), -1)
	row("throughput, ok ops/s", fmt.Sprintf("%.0f", f.Throughput), fmt.Sprintf("%.0f", d.Throughput), thr)
	row("write p50", f.WriteLatency.P50, d.WriteLatency.P50, wp50)
	row("write p99", f.WriteLatency.P99, d.WriteLatency.P99, wp99)
	row("read p50", f.ReadLatency.P50, d.ReadLatency.P50, rp50)
	row("read p99", f.ReadLatency.P99, d.ReadLatency.P99, rp99)
	row("violations", len(f.Violations), len(d.Violations), -1)
	p("\nflypg writes by outcome:%s; reads:%s\n", formatOutcomes(f.Outcomes), formatOutcomes(f.ReadOutcomes))
	p("\n## Memory and goroutines (flypg run, this process: nodes + clients)\n\n")
	p("| | at | heap alloc | heap minus checker history | goroutines | ops so far |\n|---|---|---|---|---|---|\n")
	s, m, e := f.Curve()
	for _, x := range []struct {
		name string
		s    Sample
	}{{"before the clients", f.Before}, {"start (after warm-up)", s}, {"middle", m}, {"end", e}, {"after the clients stopped", f.After}} {
		p("| %s | %v | %.1f MiB | %.1f MiB | %d | %d |\n", x.name, x.s.At.Round(time.Second), mib(x.s.HeapAlloc),
			mib(x.s.HeapAlloc-min(x.s.HeapAlloc, x.s.HistoryBytes)), x.s.Goroutines, x.s.Ops)
	}
	if gerr := f.FlatGoroutines(); gerr != nil {
		p("\n**%v**\n", gerr)
	}
	for _, rep := range []*Report{r.Flypg, r.Direct} {
		if rep != nil && len(rep.Violations) > 0 {
			p("\n## Violations (run %s)\n\n```\n%v\n```\n", rep.Run, rep.Err())
		}
	}
	return err
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// Soak runs the soak: a PostgreSQL primary (region syd) and a hot standby
// (lax) with a simulated WAN between them, a flypg node in each region in
// this process, and cfg.Clients checker clients on lax's node for
// cfg.Duration; then the same load sent direct — pgx from lax to the
// primary across the same WAN — for the baseline. Everything is torn down
// before it returns. The error is for a soak that could not run; what it
// found is in the report (SoakReport.Err).
func Soak(ctx context.Context, cfg SoakConfig) (_ *SoakReport, err error) {
	cfg = cfg.withDefaults()
	logf := func(format string, args ...any) {
		if cfg.Logf != nil {
			cfg.Logf(format, args...)
		}
	}
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i](); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	logf("soak: starting PostgreSQL (primary in syd, hot standby in lax), %v round trip", cfg.RTT)
	c, err := pgcluster.Start(ctx, pgcluster.Options{BinDir: cfg.BinDir, KeepSignals: cfg.KeepSignals})
	if err != nil {
		return nil, fmt.Errorf("soak: start PostgreSQL: %w", err)
	}
	closers = append(closers, c.Stop)
	w := wan.New(cfg.RTT)
	closers = append(closers, w.Close)
	primaryAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Primary.Port()))
	repl, err := w.Proxy(ctx, "replication", primaryAddr)
	if err != nil {
		return nil, err
	}
	if err := c.Replicas[0].ReplicateFrom(ctx, repl); err != nil {
		return nil, fmt.Errorf("soak: replicate across the WAN: %w", err)
	}
	directAddr, err := w.Proxy(ctx, "direct", primaryAddr)
	if err != nil {
		return nil, err
	}
	sydRPC, err := freeAddr()
	if err != nil {
		return nil, err
	}
	sydLink, err := w.Proxy(ctx, "link", sydRPC)
	if err != nil {
		return nil, err
	}
	secret, err := randomSecret()
	if err != nil {
		return nil, err
	}
	syd, err := flypg.Start(ctx, flypg.Config{Region: "syd", PrimaryRegion: "syd", DSN: c.Primary.DSN(), NodeName: "syd-1",
		GossipAddr: "127.0.0.1:0", RPCAddr: sydRPC, AdvertiseRPCAddr: sydLink, Secret: secret, GossipProfile: "local",
		Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("soak: start the syd node: %w", err)
	}
	closers = append(closers, syd.Close)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = syd.WaitReady(wctx) // syd knows its database is the primary before lax calls it
	cancel()
	if err != nil {
		return nil, fmt.Errorf("soak: the syd node: %w", err)
	}
	lax, err := flypg.Start(ctx, flypg.Config{Region: "lax", PrimaryRegion: "syd", DSN: c.Replicas[0].DSN(), NodeName: "lax-1",
		GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", Join: []string{syd.GossipAddr()}, Secret: secret,
		GossipProfile: "local", Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("soak: start the lax node: %w", err)
	}
	closers = append(closers, lax.Close)
	wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	err = lax.WaitReady(wctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("soak: lax finds syd: %w", err)
	}
	primary, err := sql.Open("pgx", c.Primary.DSN())
	if err != nil {
		return nil, err
	}
	closers = append(closers, primary.Close)
	laxDB := lax.OpenDB()
	closers = append(closers, laxDB.Close)
	laxDB.SetMaxOpenConns(cfg.MaxConns)
	laxDB.SetMaxIdleConns(cfg.MaxConns)

	rep := &SoakReport{PostgreSQL: c.Version().String(), Clients: cfg.Clients, RTT: cfg.RTT, MaxConns: cfg.MaxConns}
	run := Config{Clients: cfg.Clients, Duration: cfg.Duration, Mix: cfg.Mix, OpTimeout: cfg.OpTimeout, Primary: primary,
		Logf: cfg.Logf}
	run.DBs = []*Target{NewTarget("lax", "lax", laxDB, lax)}
	logf("soak: flypg: %d clients on lax's node for %v", cfg.Clients, cfg.Duration)
	if rep.Flypg, err = Run(ctx, run); err != nil {
		return nil, fmt.Errorf("soak: flypg run: %w", err)
	}
	rep.Stats = lax.Stats()
	if cfg.SkipDirect {
		return rep, nil
	}
	direct, err := sql.Open("pgx", "postgres://postgres@"+directAddr+"/postgres?sslmode=disable")
	if err != nil {
		return nil, err
	}
	closers = append(closers, direct.Close)
	direct.SetMaxOpenConns(cfg.MaxConns)
	direct.SetMaxIdleConns(cfg.MaxConns)
	run.DBs = []*Target{NewTarget("direct", "lax", direct, nil)}
	run.Duration = cfg.DirectDuration
	logf("soak: direct: the same load with pgx from lax to the primary for %v", run.Duration)
	if rep.Direct, err = Run(ctx, run); err != nil {
		return nil, fmt.Errorf("soak: direct run: %w", err)
	}
	return rep, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// randomSecret makes a cluster secret as `openssl rand -base64 32` would.
func randomSecret() ([]byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return []byte(base64.StdEncoding.EncodeToString(b[:])), nil
}
