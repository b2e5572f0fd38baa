package transport

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// latencyProxy puts toxiproxy in front of upstream, adding oneWay latency in
// each direction.
func latencyProxy(t *testing.T, upstream string, oneWay time.Duration) string {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(srv, "link", "127.0.0.1:0", upstream)
	require.NoError(t, proxy.Start())
	t.Cleanup(proxy.Stop)
	for _, stream := range []string{"upstream", "downstream"} {
		_, err := proxy.Toxics.AddToxicJson(strings.NewReader(fmt.Sprintf(
			`{"name":"latency_%s","type":"latency","stream":%q,"attributes":{"latency":%d}}`,
			stream, stream, oneWay.Milliseconds())))
		require.NoError(t, err)
	}
	return proxy.Listen
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
