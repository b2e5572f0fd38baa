package metrics_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
)

// One primary + hot standby serves the package: initdb dominates a test's
// run time otherwise.
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
		shared.c, shared.err = pgcluster.Start(ctx, pgcluster.Options{Replicas: 1})
	})
	if shared.err != nil {
		t.Fatalf("start PostgreSQL cluster: %v", shared.err)
	}
	return shared.c
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

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newSecret is a fresh cluster secret: 32 random bytes, as flypg-lab makes.
func newSecret(t testing.TB) []byte {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return []byte(base64.StdEncoding.EncodeToString(b))
}

type regions struct {
	c        *pgcluster.Cluster
	syd, lax *flypg.Node
}

// startRegions starts a primary-region node "syd" on the primary and a
// replica-region node "lax" on the hot standby, joined to it.
func startRegions(t *testing.T) *regions {
	t.Helper()
	c := cluster(t)
	secret := newSecret(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(region, dsn string, join []string) *flypg.Node {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := flypg.Start(ctx, flypg.Config{Region: region, PrimaryRegion: "syd", DSN: dsn,
			NodeName: region + "-" + t.Name(), GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", Join: join,
			Secret: secret, GossipProfile: "local", AwaitTimeout: 10 * time.Second, Logger: quiet})
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	r := &regions{c: c}
	r.syd = start("syd", c.Primary.DSN(), nil)
	r.lax = start("lax", c.Replicas[0].DSN(), []string{r.syd.GossipAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, r.lax.WaitReady(ctx), "lax finds syd")
	return r
}
