package flypg_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flypg/flypg/internal/pgcluster"
)

// One primary + replica serves the whole package: starting one per test
// would spend most of the run in initdb.
var shared struct {
	once sync.Once
	c    *pgcluster.Cluster
	err  error
}

func cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.c, shared.err = pgcluster.Start(ctx, pgcluster.Options{})
	})
	if shared.err != nil {
		t.Fatalf("start PostgreSQL cluster: %v", shared.err)
	}
	return shared.c
}

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		// This process is a child a test started to run one scenario with
		// its own environment and default node (see child_test.go).
		os.Exit(runChild(name))
	}
	code := m.Run()
	if shared.c != nil {
		if code != 0 {
			fmt.Fprintln(os.Stderr, shared.c.Logs())
		}
		_ = shared.c.Stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
