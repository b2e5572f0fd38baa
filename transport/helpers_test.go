package transport

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSecret is the cluster secret of the tests' nodes: base64 of 32
// random bytes, as `openssl rand -base64 32` makes.
var testSecret = newSecret()

// newSecret makes a strong secret.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// waitFor is how long tests wait for something that should happen within a
// fraction of it; polling ends as soon as it does.
const waitFor = 10 * time.Second

func testLogger() *slog.Logger {
	if os.Getenv("FLYPG_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func testConfig(name, region string) Config {
	return Config{
		NodeName:      name,
		Region:        region,
		PrimaryRegion: "iad",
		GossipAddr:    "127.0.0.1:0",
		RPCAddr:       "127.0.0.1:0",
		Secret:        []byte(testSecret),
		Profile:       ProfileLocal,
		Logger:        testLogger(),
	}
}

// whoAmI answers every request with "node/region:method:body".
func whoAmI(name, region string) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		return fmt.Appendf(nil, "%s/%s:%s:%s", name, region, req.Method, req.Body), nil
	})
}

func startNode(t testing.TB, cfg Config, h Handler) *Transport {
	t.Helper()
	if h == nil {
		h = whoAmI(cfg.NodeName, cfg.Region)
	}
	tr, err := Start(context.Background(), cfg, h)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// joinTo points cfg at seed's gossip address.
func joinTo(cfg Config, seed *Transport) Config {
	cfg.Join = []string{seed.GossipAddr()}
	return cfg
}

// awaitMembers waits until every node sees exactly the named members.
func awaitMembers(t testing.TB, nodes []*Transport, names ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if !sameNames(n.Members(), names) {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond, "membership did not converge to %v", names)
}

func sameNames(ms []Member, names []string) bool {
	if len(ms) != len(names) {
		return false
	}
	seen := map[string]bool{}
	for _, m := range ms {
		seen[m.Name] = true
	}
	for _, n := range names {
		if !seen[n] {
			return false
		}
	}
	return true
}

func member(tr *Transport, name string) (Member, bool) {
	for _, m := range tr.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// dropInbound kills every inbound link of tr abruptly, as a network fault
// would, leaving the node itself running.
func dropInbound(tr *Transport) {
	for _, sc := range tr.snapshotInbound() {
		sc.l.close(errors.New("test: link killed"))
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
