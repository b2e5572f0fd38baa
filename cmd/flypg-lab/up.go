package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func runUp(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	o := demoFlags(fs)
	quiet := fs.Bool("quiet", false, "do not copy the apps' logs to stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: flypg-lab up [--rtt 60ms] [--ams-delay 500ms] [--quiet]

Starts the demo's cluster — PostgreSQL primary in syd, hot standbys in lax
and ams, a simulated WAN, the example app (examples/todo) in each region —
prints each node's URL and environment, and leaves it running until Ctrl-C,
so that you can curl every region. The apps' logs go to stderr.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkLabOptions("up", *o); err != nil {
		return err
	}
	var logs io.Writer = os.Stderr
	if *quiet {
		logs = nil
	}
	l, err := startLabWithApps(ctx, *o, logs)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	printUp(stdout, l)

	// Run until ^C, or until an app dies: a half cluster is not worth
	// keeping.
	exited := make(chan *app, len(l.apps))
	for _, a := range l.apps {
		go func() { <-a.exited; exited <- a }()
	}
	select {
	case <-ctx.Done():
		progress("\ninterrupted: cleaning up...")
		return nil
	case a := <-exited:
		return fmt.Errorf("the %s app exited: %v\n%s", a.region, a.err, a.logs.tail())
	}
}

func printUp(w io.Writer, l *lab) {
	fmt.Fprintf(w, "\nflypg lab is up: primary database in syd, hot standbys in lax and ams, %v round trip between syd and each;\n", l.rtt)
	fmt.Fprintf(w, "ams's standby replays %v behind the primary.\n\n", l.amsDelay)
	fmt.Fprintf(w, "PostgreSQL  primary %s\n            lax     %s\n            ams     %s\n\n", l.pg.Primary.DSN(), l.laxPG().DSN(), l.amsPG().DSN())
	for _, a := range l.apps {
		fmt.Fprintf(w, "%s  %s  (pid %d)\n", a.region, a.url, a.pid)
		for _, kv := range a.env {
			fmt.Fprintf(w, "      %s\n", kv)
		}
		fmt.Fprintln(w)
	}
	syd, lax, ams := l.app("syd"), l.app("lax"), l.app("ams")
	fmt.Fprintf(w, `Try:
  curl -s -XPOST %[2]s/todos -d '{"title":"buy milk"}'          # written in syd, visible in lax at once
  curl -s %[2]s/todos
  curl -s -XPOST '%[2]s/todos?noawait=1' -d '{"title":"later"}'  # no wait for lax's replica
  curl -s -XPOST %[2]s/todos/batch -d '{"titles":["a","b","c"]}' # one round trip (CallPrimary)
  curl -s %[1]s/todos
  curl -s %[2]s/stats
  curl -s %[2]s/metrics | grep ^flypg_

  # Read-your-writes in another region: the write's token (header Flypg-Token,
  # or the flypg-token cookie) makes ams wait for its lagging replica.
  tok=$(curl -s -o /dev/null -D - -XPOST %[2]s/todos -d '{"title":"moving"}' | sed -n 's/^Flypg-Token: *//Ip' | tr -d '\r')
  curl -s %[3]s/todos                                   # stale: the new todo is missing
  curl -s -H "Flypg-Token: $tok" %[3]s/todos            # waits for ams's replica, then has it

Ctrl-C stops everything.
`, syd.url, lax.url, ams.url)
}
