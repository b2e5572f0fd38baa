// Command flypg-lab runs flypg on one machine: real PostgreSQL servers
// started in a temporary directory, torn down on exit.
//
//	flypg-lab demo    a short narrated scenario
//
// Progress and errors go to stderr, results to stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: flypg-lab <command> [flags]

commands:
  demo    start a primary and a replica, run flypg against them, narrate what happens

Run "flypg-lab <command> -help" for the command's flags.
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
		err = runDemo(ctx, args)
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "flypg-lab: unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
	if err == flag.ErrHelp {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flypg-lab:", err)
		os.Exit(1)
	}
}
