// Command flypg-lab runs flypg on one machine: a real PostgreSQL primary
// (region "syd") and its hot standbys (regions "lax" and "ams"), started in
// a temporary directory, with a simulated WAN between syd and each other
// region; everything is torn down on exit.
//
//	flypg-lab demo    a short narrated scenario with the example app in every region
//	flypg-lab up      the same cluster, left running for curl until Ctrl-C
//	flypg-lab bench   the benchmark suite, as a markdown report with SVG charts
//	flypg-lab soak    many clients under the read-your-writes checker
//	flypg-lab secret  print a new cluster secret (FLYPG_SECRET)
//
// Run it from the flypg repository (go run ./cmd/flypg-lab ...): demo and up
// build ./examples/todo and run it as one process per region. Progress and
// errors go to stderr, results to stdout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: flypg-lab <command> [flags]

Runs flypg on this machine: a PostgreSQL primary in region syd, hot
standbys in regions lax and ams, a simulated WAN between syd and each. Run
it from the flypg repository (go run ./cmd/flypg-lab ...).

commands:
  demo    run the example app in every region and narrate what flypg does
  up      start the same cluster and apps and keep them running until Ctrl-C
  bench   run the benchmark suite and print (or write) a markdown report
  soak    run many clients in lax under the read-your-writes checker
  secret  print a new cluster secret for FLYPG_SECRET

Run "flypg-lab <command> --help" for the command's flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "demo":
		err = runDemo(ctx, args, os.Stdout)
	case "up":
		err = runUp(ctx, args, os.Stdout)
	case "bench":
		err = runBench(ctx, args, os.Stdout)
	case "soak":
		err = runSoak(ctx, args, os.Stdout)
	case "secret":
		err = runSecret(args, os.Stdout, os.Stderr)
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "flypg-lab: unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		if !ue.printed {
			fmt.Fprintln(os.Stderr, "flypg-lab:", err)
		}
		os.Exit(2)
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "flypg-lab: interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "flypg-lab:", err)
		os.Exit(1)
	}
}

// usageError is a command line the command cannot run: exit status 2.
// printed: the flag package has already printed it, with the usage.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parseFlags parses a command's flags; a bad flag is a usageError (the flag
// package has printed it with the usage).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err: err, printed: true}
	}
	if err == nil && fs.NArg() > 0 {
		// No command takes positional arguments.
		return usageError{err: fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())}
	}
	return err
}
