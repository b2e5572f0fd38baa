package transport

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/wan"
)

// toxicProxy puts toxiproxy in front of upstream with the given toxics
// (toxiproxy's JSON) and returns its address.
func toxicProxy(t testing.TB, upstream string, toxics ...string) string {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(srv, "link", "127.0.0.1:0", upstream)
	require.NoError(t, proxy.Start())
	t.Cleanup(proxy.Stop)
	for _, tx := range toxics {
		_, err := proxy.Toxics.AddToxicJson(strings.NewReader(tx))
		require.NoError(t, err)
	}
	return proxy.Listen
}

// latencyProxy puts a simulated WAN (internal/wan) in front of upstream,
// adding oneWay latency in each direction. (toxiproxy's own Proxy leaks a
// latency goroutine when one side closes mid-stream; internal/wan does not.)
func latencyProxy(t testing.TB, upstream string, oneWay time.Duration) string {
	t.Helper()
	w := wan.New(2 * oneWay)
	t.Cleanup(func() { _ = w.Close() })
	addr, err := w.Proxy(context.Background(), "link", upstream)
	require.NoError(t, err)
	return addr
}

// TestWarmCallIsOneRoundTrip checks the link's structure: once warm, a call
// costs one round trip, not the two or three a connect or handshake would.
func TestWarmCallIsOneRoundTrip(t *testing.T) {
	const oneWay = 25 * time.Millisecond
	const rtt = 2 * oneWay
	rpc := deadAddr(t) // a free port for the server's link, behind the proxy
	c := testConfig("iad-1", "iad")
	c.RPCAddr = rpc
	c.AdvertiseRPCAddr = latencyProxy(t, rpc, oneWay)
	server := startNode(t, c, nil)
	client := startNode(t, joinTo(testConfig("lhr-1", "lhr"), server), nil)
	awaitMembers(t, []*Transport{client, server}, "iad-1", "lhr-1")
	ctx := ctxTimeout(t, waitFor)

	start := time.Now()
	_, err := client.Call(ctx, "iad-1", "cold", nil)
	require.NoError(t, err)
	cold := time.Since(start)
	// Connect, hello/challenge, auth/welcome, request/response.
	assert.GreaterOrEqual(t, cold, 3*rtt, "the cold call paid for the handshake")

	var warm []time.Duration
	for range 7 {
		start := time.Now()
		resp, err := client.Call(ctx, "iad-1", "warm", nil)
		require.NoError(t, err)
		require.Equal(t, "iad-1/iad:warm:", string(resp))
		warm = append(warm, time.Since(start))
	}
	slices.Sort(warm)
	t.Logf("cold call %v; warm calls %v", cold.Round(time.Millisecond), warm)
	// The fastest call shows the structure; slower ones only show the
	// machine's load.
	assert.GreaterOrEqual(t, warm[0], rtt, "the proxy adds the latency")
	assert.Less(t, warm[0], 2*rtt, "a warm call is one round trip")

	m, ok := member(client, "iad-1")
	require.True(t, ok)
	assert.GreaterOrEqual(t, m.RTT, rtt, "Member.RTT is measured on the link")
	assert.Less(t, m.RTT, 3*rtt)
}

// BenchmarkCall measures a call over a warm loopback link: the link's own
// overhead (serial) and throughput at several concurrency levels.
func BenchmarkCall(b *testing.B) {
	server := startNode(b, testConfig("iad-1", "iad"), HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		return req.Body, nil
	}))
	client := startNode(b, joinTo(testConfig("lhr-1", "lhr"), server), nil)
	awaitMembers(b, []*Transport{client, server}, "iad-1", "lhr-1")
	ctx := context.Background()
	body := []byte(strings.Repeat("x", 128))
	if _, err := client.Call(ctx, "iad-1", "warm", body); err != nil {
		b.Fatal(err)
	}
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			// RunParallel starts SetParallelism×GOMAXPROCS goroutines.
			b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
			if conc == 1 {
				for b.Loop() {
					if _, err := client.Call(ctx, "iad-1", "bench", body); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := client.Call(ctx, "iad-1", "bench", body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

// BenchmarkLinkTLS measures what TLS costs the link against plaintext: a
// warm call's round trip (serial), calls under 64 concurrent callers, and a
// cold connect (TCP, TLS, SPAKE2). The two variants run interleaved, one
// operation of each in turn, so that the machine's changing load hits both
// alike; "x-plain" is TLS's time over plaintext's.
func BenchmarkLinkTLS(b *testing.B) {
	echo := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) { return req.Body, nil })
	body := []byte(strings.Repeat("x", 512)) // about a forwarded INSERT
	clients := map[bool]*Transport{}
	for _, plain := range []bool{true, false} {
		cfg := func(name, region string) Config {
			c := testConfig(name, region)
			c.InsecurePlaintext = plain
			return c
		}
		server := startNode(b, cfg("iad-1", "iad"), echo)
		client := startNode(b, joinTo(cfg("lhr-1", "lhr"), server), nil)
		awaitMembers(b, []*Transport{client, server}, "iad-1", "lhr-1")
		if _, err := client.Call(context.Background(), "iad-1", "warm", body); err != nil {
			b.Fatal(err)
		}
		clients[plain] = client
	}
	ctx := context.Background()
	timed := func(b *testing.B, f func(tr *Transport) error) (plain, tls time.Duration) {
		for _, p := range []bool{true, false} {
			start := time.Now()
			if err := f(clients[p]); err != nil {
				b.Error(err)
				return
			}
			if p {
				plain += time.Since(start)
			} else {
				tls += time.Since(start)
			}
		}
		return
	}
	report := func(b *testing.B, plain, tls time.Duration, n int64, unit string) {
		b.ReportMetric(float64(plain.Microseconds())/float64(n), "plain-µs/"+unit)
		b.ReportMetric(float64(tls.Microseconds())/float64(n), "tls-µs/"+unit)
		b.ReportMetric(float64(tls)/float64(plain), "x-plain")
	}
	call := func(tr *Transport) error { _, err := tr.Call(ctx, "iad-1", "bench", body); return err }
	b.Run("warm-call", func(b *testing.B) {
		var plain, tls time.Duration
		for b.Loop() {
			p, t := timed(b, call)
			plain, tls = plain+p, tls+t
		}
		report(b, plain, tls, int64(b.N), "call")
	})
	b.Run("concurrency-64", func(b *testing.B) {
		var plain, tls atomic.Int64
		b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, t := timed(b, call)
				plain.Add(int64(p))
				tls.Add(int64(t))
			}
		})
		// Mean latency under load; its ratio is the inverse of the
		// throughput ratio.
		report(b, time.Duration(plain.Load()), time.Duration(tls.Load()), int64(b.N), "call")
	})
	b.Run("cold-connect", func(b *testing.B) {
		peers := map[*Transport]*peer{}
		for _, tr := range clients {
			p, err := tr.peerFor(mustMember(b, tr, "iad-1"))
			if err != nil {
				b.Fatal(err)
			}
			peers[tr] = p
		}
		var plain, tls time.Duration
		for b.Loop() {
			p, t := timed(b, func(tr *Transport) error {
				l, err := tr.dialLink(peers[tr], 0)
				if err == nil {
					l.fail(errRetired)
				}
				return err
			})
			plain, tls = plain+p, tls+t
		}
		report(b, plain, tls, int64(b.N), "connect")
	})
}
