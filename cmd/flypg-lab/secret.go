package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/flypg/flypg/transport"
)

func runSecret(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: flypg-lab secret

Prints a new cluster secret: 32 random bytes from the operating system's
generator (crypto/rand), in base64 — the same as openssl rand -base64 32.
Set it as FLYPG_SECRET, the same value on every node, e.g.

  fly secrets set FLYPG_SECRET="$(go run github.com/flypg/flypg/cmd/flypg-lab secret)"
`)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := newSecret()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, s)
	return err
}

// validSecret reports whether flypg accepts s: newSecret's output always
// is, except with a probability far below a hardware fault's.
func validSecret(s string) error { return transport.ValidateSecret([]byte(s)) }
