package wan_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flypg/flypg/internal/wan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// echoServer echoes lines on a loopback port until the test ends; the
// cleanup waits for every goroutine it started.
func echoServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

func newWAN(t *testing.T, rtt time.Duration, opts ...wan.Option) *wan.WAN {
	w := wan.New(rtt, opts...)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	return w
}

func dial(t *testing.T, addr string) *bufio.ReadWriter {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
}

// roundTrip sends one line and waits for its echo.
func roundTrip(rw *bufio.ReadWriter) (time.Duration, error) {
	start := time.Now()
	if _, err := rw.WriteString("ping\n"); err != nil {
		return 0, err
	}
	if err := rw.Flush(); err != nil {
		return 0, err
	}
	line, err := rw.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "ping\n" {
		return 0, errors.New("bad echo: " + line)
	}
	return time.Since(start), nil
}

func samples(t *testing.T, rw *bufio.ReadWriter, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, n)
	for i := range out {
		d, err := roundTrip(rw)
		require.NoError(t, err)
		out[i] = d
	}
	slices.Sort(out)
	return out
}

// The slack allows for a loaded, shared 2-core machine under -race; the
// minimum of several samples must still be close to the RTT.
const (
	maxSlack = 250 * time.Millisecond
	minSlack = 40 * time.Millisecond
)

func TestLatency(t *testing.T) {
	ctx := testCtx(t)
	const rtt = 40 * time.Millisecond
	w := newWAN(t, rtt)
	addr, err := w.Proxy(ctx, "echo", echoServer(t))
	require.NoError(t, err)
	rw := dial(t, addr)

	got := samples(t, rw, 5)
	t.Logf("rtt %v: round trips %v", rtt, got)
	assert.GreaterOrEqual(t, got[0], rtt, "a round trip must not be faster than the RTT")
	assert.Less(t, got[0], rtt+minSlack, "fastest round trip")
	assert.Less(t, got[len(got)-1], rtt+maxSlack, "slowest round trip")
}

func TestZeroRTTIsFast(t *testing.T) {
	ctx := testCtx(t)
	w := newWAN(t, 0)
	addr, err := w.Proxy(ctx, "echo", echoServer(t))
	require.NoError(t, err)
	got := samples(t, dial(t, addr), 5)
	t.Logf("rtt 0: round trips %v", got)
	assert.Less(t, got[0], 10*time.Millisecond)
}

func TestSetRTTAppliesToOpenConnections(t *testing.T) {
	ctx := testCtx(t)
	w := newWAN(t, 0)
	addr, err := w.Proxy(ctx, "echo", echoServer(t))
	require.NoError(t, err)
	rw := dial(t, addr)

	const rtt = 60 * time.Millisecond
	require.NoError(t, w.SetRTT(rtt))
	assert.Equal(t, rtt, w.RTT())
	got := samples(t, rw, 3)
	t.Logf("after SetRTT(%v): %v", rtt, got)
	assert.GreaterOrEqual(t, got[0], rtt)
	assert.Less(t, got[0], rtt+minSlack)

	require.NoError(t, w.SetRTT(0))
	got = samples(t, rw, 3)
	t.Logf("after SetRTT(0): %v", got)
	assert.Less(t, got[0], 10*time.Millisecond)
}

func TestJitterStaysInBounds(t *testing.T) {
	ctx := testCtx(t)
	const rtt, jitter = 40 * time.Millisecond, 20 * time.Millisecond
	w := newWAN(t, rtt, wan.WithJitter(jitter))
	addr, err := w.Proxy(ctx, "echo", echoServer(t))
	require.NoError(t, err)
	got := samples(t, dial(t, addr), 8)
	t.Logf("rtt %v ± %v: %v", rtt, jitter, got)
	assert.GreaterOrEqual(t, got[0], rtt-jitter)
	assert.Less(t, got[len(got)-1], rtt+jitter+maxSlack)
}

func TestPartitionAndHeal(t *testing.T) {
	ctx := testCtx(t)
	w := newWAN(t, 10*time.Millisecond)
	addr, err := w.Proxy(ctx, "echo", echoServer(t))
	require.NoError(t, err)
	rw := dial(t, addr)
	_, err = roundTrip(rw)
	require.NoError(t, err)

	w.Partition()
	// The open connection fails: the read returns (EOF or reset) as soon as
	// the proxy drops it; the dial deadline only bounds a broken proxy.
	_, err = roundTrip(rw)
	require.Error(t, err, "echo through a partitioned WAN")
	var netErr net.Error
	assert.False(t, errors.As(err, &netErr) && netErr.Timeout(), "the connection must be dropped, not hang: %v", err)

	_, err = net.Dial("tcp", addr)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "dial through a partitioned WAN")

	// A proxy made during the partition is cut too.
	addr2, err := w.Proxy(ctx, "echo2", echoServer(t))
	require.NoError(t, err)
	_, err = net.Dial("tcp", addr2)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)

	require.NoError(t, w.Heal())
	for _, a := range []string{addr, addr2} {
		d, err := roundTrip(dial(t, a))
		require.NoError(t, err, "echo after Heal via %s", a)
		assert.GreaterOrEqual(t, d, 10*time.Millisecond, "latency is back after Heal")
	}
	require.NoError(t, w.Heal(), "healing a healthy WAN")
}

func TestCloseLeavesNothing(t *testing.T) {
	// Registered first, so it runs last: after the cleanups that close the
	// client connections and the echo server.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx := testCtx(t)
	upstream := echoServer(t)
	w := wan.New(20 * time.Millisecond)
	var addrs []string
	for _, name := range []string{"a", "b"} {
		addr, err := w.Proxy(ctx, name, upstream)
		require.NoError(t, err)
		addrs = append(addrs, addr)
	}
	_, err := w.Proxy(ctx, "a", upstream)
	require.Error(t, err, "duplicate name")

	// Connections with data on the way when Close comes.
	var rws []*bufio.ReadWriter
	for _, a := range addrs {
		rw := dial(t, a)
		_, err := roundTrip(rw)
		require.NoError(t, err)
		_, err = rw.WriteString("in flight\n")
		require.NoError(t, err)
		require.NoError(t, rw.Flush())
		rws = append(rws, rw)
	}

	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "second Close")
	for _, a := range addrs {
		_, err := net.Dial("tcp", a)
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
	}
	for _, rw := range rws {
		_, err := io.ReadAll(rw) // returns once the proxy has closed it
		var netErr net.Error
		assert.False(t, errors.As(err, &netErr) && netErr.Timeout(), "connection left open: %v", err)
	}
	_, err = w.Proxy(ctx, "c", upstream)
	require.ErrorIs(t, err, wan.ErrClosed)
	require.ErrorIs(t, w.Heal(), wan.ErrClosed)
	require.ErrorIs(t, w.SetRTT(time.Second), wan.ErrClosed)
}
