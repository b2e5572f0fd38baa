package pgcluster

import (
	"context"
	"testing"
	"time"
)

// ForTest starts a cluster for t and stops it in t.Cleanup. Missing binaries
// fail the test with installation advice: a test that needs PostgreSQL never
// skips. When the test fails, the server logs are attached to its output.
func ForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start PostgreSQL cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL logs:\n%s", c.Logs())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop PostgreSQL cluster: %v", err)
		}
	})
	return c
}
