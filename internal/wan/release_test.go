package wan_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg/internal/wan"
)

// toxicProxy is the release this package used before: toxiproxy's latency
// toxic (a Go timer per chunk, millisecond delays) on each direction of one
// connection. It is the baseline of BenchmarkReleaseError.
func toxicProxy(tb testing.TB, upstream string, rtt time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			lat := &toxics.ToxicWrapper{Toxic: &toxics.LatencyToxic{Latency: (rtt / 2).Milliseconds()}, Name: "latency", Type: "latency", Toxicity: 1}
			for _, pair := range [][2]net.Conn{{client, server}, {server, client}} {
				src, dst := pair[0], pair[1]
				in := make(chan *stream.StreamChunk, 1024)
				out := make(chan *stream.StreamChunk)
				stub := toxics.NewToxicStub(in, out)
				wg.Go(func() {
					w := stream.NewChanWriter(in)
					_, _ = io.Copy(w, src)
					w.Close()
				})
				wg.Go(func() { stub.Run(lat) })
				wg.Go(func() {
					if _, err := io.Copy(dst, stream.NewChanReader(out)); err != nil {
						for range out {
						}
					}
					dst.Close()
				})
			}
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// BenchmarkRoundTripExcess measures how late a proxy delivers end to end:
// the round trip of a line through it to an echo server and back, minus
// the RTT — two releases plus the hops (the proxy's reads, the echo, the
// client's wake-up), which a loaded machine makes slow. precise is this
// package's proxy; toxiproxy the latency toxic it replaced; zero a proxy of
// a zero-RTT WAN, the hops alone; side by side in the same run, one round
// trip of each in turn. The metrics are the excess's quantiles in
// microseconds and the ratios toxiproxy / precise. BenchmarkReleaseError
// (release_internal_test.go) isolates the release itself.
func BenchmarkRoundTripExcess(b *testing.B) {
	const rtt = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	echo := echoServer(b)
	w := wan.New(rtt)
	b.Cleanup(func() { w.Close() })
	preciseAddr, err := w.Proxy(ctx, "echo", echo)
	require.NoError(b, err)
	toxicAddr := toxicProxy(b, echo, rtt)
	conn := func(addr string) *bufio.ReadWriter {
		c, err := net.Dial("tcp", addr)
		require.NoError(b, err)
		b.Cleanup(func() { c.Close() })
		return bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	}
	w0 := wan.New(0)
	b.Cleanup(func() { w0.Close() })
	zeroAddr, err := w0.Proxy(ctx, "echo", echo)
	require.NoError(b, err)
	precise, toxic, zero := conn(preciseAddr), conn(toxicAddr), conn(zeroAddr)
	var late [3][]time.Duration
	for range 3 { // warm up
		_, _ = roundTrip(precise)
		_, _ = roundTrip(toxic)
		_, _ = roundTrip(zero)
	}
	b.ResetTimer()
	for b.Loop() {
		for k, rw := range []*bufio.ReadWriter{precise, toxic, zero} {
			d, err := roundTrip(rw)
			require.NoError(b, err)
			if k < 2 {
				d -= rtt
			}
			late[k] = append(late[k], d)
		}
	}
	b.StopTimer()
	q := func(k int, p float64) float64 {
		s := slices.Clone(late[k])
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(q(0, 0.5), "precise-p50-µs")
	b.ReportMetric(q(0, 0.9), "precise-p90-µs")
	b.ReportMetric(q(1, 0.5), "toxiproxy-p50-µs")
	b.ReportMetric(q(1, 0.9), "toxiproxy-p90-µs")
	b.ReportMetric(q(2, 0.5), "zero-rtt-p50-µs")
	b.ReportMetric(q(1, 0.5)/q(0, 0.5), "p50-ratio")
	b.ReportMetric(q(1, 0.9)/q(0, 0.9), "p90-ratio")
}
