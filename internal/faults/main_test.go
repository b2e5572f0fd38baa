package faults

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

var long = flag.Bool("faults.long", os.Getenv("FLYPG_FAULTS_LONG") != "",
	"run the long versions of the faults and the 1,000-client 60 s soak (also FLYPG_FAULTS_LONG=1)")

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		// This process is a node a test started as a separate OS process
		// (see child_test.go).
		os.Exit(runChild(spec))
	}
	flag.Parse()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// pick is the short or the long version of a setting.
func pick[T any](short, longer T) T {
	if *long {
		return longer
	}
	return short
}
