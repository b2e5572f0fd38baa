package backend

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg/internal/pgcluster"
)

// One primary serves the package's tests.
var shared struct {
	once sync.Once
	c    *pgcluster.Cluster
	err  error
}

func primary(t testing.TB) *pgcluster.Server {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.c, shared.err = pgcluster.Start(ctx, pgcluster.Options{Replicas: -1})
	})
	if shared.err != nil {
		t.Fatalf("start PostgreSQL: %v", shared.err)
	}
	return shared.c.Primary
}

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

// pqDBs opens the primary through PQ's connector (what a node's pool is)
// and through plain lib/pq (the reference).
func pqDBs(t testing.TB) (pool, ref *sql.DB) {
	t.Helper()
	dsn := primary(t).DSN()
	conn, err := PQ{}.Connector(dsn)
	require.NoError(t, err)
	pool = sql.OpenDB(conn)
	ref, err = sql.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { pool.Close(); ref.Close() })
	return pool, ref
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
