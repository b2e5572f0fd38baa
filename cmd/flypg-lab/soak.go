package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/flypg/flypg/internal/checker"
)

type soakOptions struct {
	clients  int
	duration time.Duration
	rtt      time.Duration
	conns    int
	direct   bool
}

func parseSoakFlags(args []string, output io.Writer) (soakOptions, error) {
	var o soakOptions
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.IntVar(&o.clients, "clients", 1000, "concurrent clients in the replica region (lax)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "how long the clients run (each phase)")
	fs.DurationVar(&o.rtt, "rtt", 20*time.Millisecond, "round-trip time of the simulated WAN between syd and lax")
	fs.IntVar(&o.conns, "conns", 64, "connections each pool may open (flypg's database in lax; the baseline's pgx pool), as an app would bound them")
	fs.BoolVar(&o.direct, "direct", true, "then send the same load direct (pgx across the WAN to the primary), for comparison")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: flypg-lab soak [--clients 1000] [--duration 60s] [--rtt 20ms] [--conns 64] [--direct=true]

Starts a PostgreSQL primary (syd) and a hot standby (lax) with a simulated
WAN between them, a flypg node in each region in this process, and runs the
read-your-writes checker (internal/checker) with many concurrent clients on
lax's node: random writes (autocommit, RETURNING, transactions, pipelined
transactions, CallPrimary) with keys of their own, and reads of them. At
the end it verifies against the primary that every acknowledged write is
there exactly once, that no read missed its client's acknowledged writes,
and that every error told the truth. Then, with --direct, the same load
sent direct. It prints throughput, latency against the baseline, outcomes,
and memory and goroutines at the start, middle and end. A violation, or
goroutines that keep growing after warm-up, make it exit 1.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.clients <= 0:
		return o, usageError{err: fmt.Errorf("soak: --clients %d: must be positive", o.clients)}
	case o.duration <= 0:
		return o, usageError{err: fmt.Errorf("soak: --duration %v: must be positive", o.duration)}
	case o.rtt <= 0:
		return o, usageError{err: fmt.Errorf("soak: --rtt %v: must be positive", o.rtt)}
	case o.conns <= 0:
		return o, usageError{err: fmt.Errorf("soak: --conns %d: must be positive", o.conns)}
	}
	return o, nil
}

// soakConfig is the checker's soak for the command line's options.
func soakConfig(o soakOptions) checker.SoakConfig {
	return checker.SoakConfig{
		Clients:    o.clients,
		Duration:   o.duration,
		RTT:        o.rtt,
		MaxConns:   o.conns,
		SkipDirect: !o.direct,
		// main turns ^C into ctx's cancellation; the soak then tears its
		// cluster down itself.
		KeepSignals: true,
		Logf:        func(format string, args ...any) { progress(fmt.Sprintf(format, args...)) },
	}
}

func runSoak(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseSoakFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	started := time.Now()
	// The soak itself — cluster, nodes, clients, verification, baseline —
	// is the checker's (internal/checker.Soak).
	rep, err := checker.Soak(ctx, soakConfig(o))
	if err != nil {
		return err
	}
	werr := rep.WriteMarkdown(stdout)
	progress(fmt.Sprintf("soak took %v", time.Since(started).Round(time.Second)))
	return errors.Join(werr, rep.Err())
}
