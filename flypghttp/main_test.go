package flypghttp

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

// One primary and two hot standbys serve the whole package — "syd" on the
// primary, "lax" and "ams" on a standby each: starting servers per test
// would spend the run in initdb.
var shared struct {
	once sync.Once
	c    *pgcluster.Cluster
	err  error
}

func testCluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.c, shared.err = pgcluster.Start(ctx, pgcluster.Options{Replicas: 2})
	})
	if shared.err != nil {
		t.Fatalf("start PostgreSQL cluster: %v", shared.err)
	}
	return shared.c
}

// TestCluster is the package's shared cluster, for the external tests.
var TestCluster = testCluster

func TestMain(m *testing.M) {
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
