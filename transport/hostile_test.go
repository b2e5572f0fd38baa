package transport

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawDial opens a plain TCP connection to tr's link port.
func rawDial(t testing.TB, tr *Transport) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tr.RPCAddr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// tlsDial opens a TLS connection to tr's link port, as any client could:
// the certificate is not checked, there being nothing to check it against.
func tlsDial(t testing.TB, tr *Transport) *tls.Conn {
	t.Helper()
	c := tls.Client(rawDial(t, tr), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{alpnLink}}) //nolint:gosec // the attacker's view
	require.NoError(t, c.SetDeadline(time.Now().Add(waitFor)))
	require.NoError(t, c.Handshake())
	return c
}

// requireDropped asserts the server closes c (rather than us timing out).
func requireDropped(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not drop the connection within %v", within)
	}
}

func prefix(n uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return b[:]
}

// rawAuth runs the client handshake on a TLS connection with secret.
func rawAuth(c *tls.Conn, secret, want string) (*frameReader, error) {
	binding, err := tlsBinding(c)
	if err != nil {
		return nil, err
	}
	hp := fuzzParams("intruder", secret)
	hp.binding = binding
	fr := newFrameReader(c, handshakeMaxFrame)
	_, err = clientHandshake(c, fr, hp, 0, want)
	fr.max = DefaultMaxFrameSize
	return fr, err
}

func TestHostilePeers(t *testing.T) {
	var calls atomic.Int64
	h := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		if req.Method == "dup-probe" { // see "duplicate request id"
			<-ctx.Done()
			return nil, ctx.Err()
		}
		calls.Add(1)
		return []byte("ok"), nil
	})
	const hsTimeout = 300 * time.Millisecond
	client, server := pair(t, h, func(c *Config) { c.HandshakeTimeout = hsTimeout })
	ctx := ctxTimeout(t, waitFor)
	_, err := client.Call(ctx, "iad-1", "warm", nil)
	require.NoError(t, err)
	calls.Store(0)
	goroutines := runtime.NumGoroutine()
	authed := func(t *testing.T, c net.Conn) *tls.Conn {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{alpnLink}}) //nolint:gosec // test
		require.NoError(t, tc.Handshake())
		_, err := rawAuth(tc, testSecret, "iad-1")
		require.NoError(t, err)
		return tc
	}
	inTLS := func(t *testing.T, c net.Conn) *tls.Conn {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{alpnLink}}) //nolint:gosec // test
		require.NoError(t, tc.Handshake())
		return tc
	}

	for _, tc := range []struct {
		name string
		act  func(t *testing.T, c net.Conn)
	}{
		{"garbage", func(t *testing.T, c net.Conn) {
			junk := make([]byte, 1024)
			_, _ = rand.Read(junk)
			_, _ = c.Write(junk)
		}},
		{"plaintext frames to a TLS port", func(t *testing.T, c net.Conn) {
			_ = writeFrame(c, &frame{Type: frameHello, Method: "x", Body: make([]byte, helloLen)})
		}},
		{"oversized length prefix", func(t *testing.T, c net.Conn) { _, _ = c.Write(prefix(0xFFFFFFFF)) }},
		{"silent", func(t *testing.T, c net.Conn) {}},
		{"slowloris", func(t *testing.T, c net.Conn) {
			go func() { // one byte every 50ms: the handshake deadline must cut it off
				for range 200 {
					if _, err := c.Write([]byte{0x16}); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}},
		{"garbage inside TLS", func(t *testing.T, c net.Conn) {
			junk := make([]byte, 1024)
			_, _ = rand.Read(junk)
			_, _ = inTLS(t, c).Write(junk)
		}},
		{"empty frame inside TLS", func(t *testing.T, c net.Conn) { _, _ = inTLS(t, c).Write(prefix(0)) }},
		{"2 GiB prefix inside TLS", func(t *testing.T, c net.Conn) { _, _ = inTLS(t, c).Write(prefix(2 << 30)) }},
		{"large prefix before auth", func(t *testing.T, c net.Conn) { _, _ = inTLS(t, c).Write(prefix(handshakeMaxFrame + 1)) }},
		{"half a frame inside TLS", func(t *testing.T, c net.Conn) {
			_, _ = inTLS(t, c).Write(append(prefix(100), make([]byte, 10)...))
		}},
		{"silent inside TLS", func(t *testing.T, c net.Conn) { inTLS(t, c) }},
		{"no common protocol version", func(t *testing.T, c net.Conn) {
			hp := fuzzParams("old", testSecret)
			hp.minV, hp.maxV = 1, 1
			tc := inTLS(t, c)
			_, err := clientHandshake(tc, newFrameReader(tc, handshakeMaxFrame), hp, 0, "iad-1")
			require.ErrorIs(t, err, ErrIncompatible)
		}},
		{"request before auth", func(t *testing.T, c net.Conn) {
			_ = writeFrame(inTLS(t, c), &frame{Type: frameRequest, ID: 1, Method: "x"})
		}},
		{"client claims the server's own name", func(t *testing.T, c net.Conn) {
			tc := inTLS(t, c)
			hp := fuzzParams("iad-1", testSecret)
			hp.binding, _ = tlsBinding(tc)
			_, err := clientHandshake(tc, newFrameReader(tc, handshakeMaxFrame), hp, 0, "iad-1")
			require.Error(t, err)
		}},
		{"wrong secret", func(t *testing.T, c net.Conn) {
			_, err := rawAuth(inTLS(t, c), newSecret(), "iad-1")
			require.ErrorIs(t, err, ErrAuth)
		}},
		{"reflected proof", func(t *testing.T, c net.Conn) {
			// Without the secret, echo the server's own confirmation back
			// as ours.
			tc := inTLS(t, c)
			fr := newFrameReader(tc, handshakeMaxFrame)
			hello := fuzzParams("mirror", newSecret())
			var body []byte
			body = binary.BigEndian.AppendUint16(body, MinProtocolVersion)
			body = binary.BigEndian.AppendUint16(body, ProtocolVersion)
			body = binary.BigEndian.AppendUint32(body, DefaultMaxFrameSize)
			body = binary.BigEndian.AppendUint32(body, DefaultStreamWindow)
			_, pA, err := spakeShare(rand.Reader, hello.secrets[0].wM)
			require.NoError(t, err)
			require.NoError(t, writeFrame(tc, &frame{Type: frameHello, Method: "mirror", Body: append(body, pA...)}))
			ch, err := fr.read()
			require.NoError(t, err)
			require.Equal(t, frameChallenge, ch.Type)
			cB := ch.Body[challengeHead+pointLen : challengeHead+pointLen+confirmLen]
			require.NoError(t, writeFrame(tc, &frame{Type: frameAuth, Body: append([]byte{0}, cB...)}))
		}},
		{"garbage after auth", func(t *testing.T, c net.Conn) {
			_, _ = authed(t, c).Write([]byte{0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1})
		}},
		{"oversized prefix after auth", func(t *testing.T, c net.Conn) {
			_, _ = authed(t, c).Write(prefix(DefaultMaxFrameSize + 1))
		}},
		{"server frame from a client", func(t *testing.T, c net.Conn) {
			_ = writeFrame(authed(t, c), &frame{Type: frameResponse, ID: 1})
		}},
		{"request declaring fewer bytes than it carries", func(t *testing.T, c net.Conn) {
			_ = writeFrame(authed(t, c), &frame{Type: frameRequest, ID: 1, Method: "x", N: 1, Body: []byte("abc")})
		}},
		{"parts beyond the declared size", func(t *testing.T, c net.Conn) {
			tc := authed(t, c)
			_ = writeFrame(tc, &frame{Type: frameRequest, ID: 1, Method: "x", N: 4, Body: []byte("ab")})
			_ = writeFrame(tc, &frame{Type: frameRequestPart, ID: 1, Body: []byte("cdef")})
		}},
		{"duplicate request id", func(t *testing.T, c net.Conn) {
			tc := authed(t, c)
			// The first is still running when its id comes again.
			_ = writeFrame(tc, &frame{Type: frameRequest, ID: 7, Method: "dup-probe"})
			_ = writeFrame(tc, &frame{Type: frameRequest, ID: 7, Method: "dup-probe"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, server)
			tc.act(t, c)
			requireDropped(t, c, 5*time.Second)
		})
	}
	assert.Zero(t, calls.Load(), "nothing from a hostile peer ran")

	// Nothing leaked, and the node still serves.
	awaitGoroutines(t, goroutines)
	resp, err := client.Call(ctx, "iad-1", "still there?", nil)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(resp))

	// An authenticated raw client is served, proving the checks above
	// rejected the input and not the tool.
	c := tlsDial(t, server)
	fr, err := rawAuth(c, testSecret, "iad-1")
	require.NoError(t, err)
	require.NoError(t, writeFrame(c, &frame{Type: frameRequest, ID: 1, Method: "raw"}))
	f, err := fr.read()
	require.NoError(t, err)
	assert.Equal(t, frame{Type: frameResponse, ID: 1, Body: []byte("ok")}, f)
}

// awaitGoroutines polls until the goroutine count is back to baseline.
// (require.Eventually would count its own goroutine.)
func awaitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d now:\n%s", baseline, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// memWatch samples the heap while a test runs and reports its peak growth
// over the baseline, and RSS growth, in bytes.
type memWatch struct {
	base, baseRSS uint64
	peak          atomic.Uint64
	stop          chan struct{}
	done          chan struct{}
}

func watchMemory() *memWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &memWatch{base: ms.HeapInuse, baseRSS: rss(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > w.peak.Load() {
				w.peak.Store(ms.HeapInuse)
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// end returns the peak heap growth and the RSS growth.
func (w *memWatch) end() (heap, rssGrowth int64) {
	close(w.stop)
	<-w.done
	return int64(w.peak.Load()) - int64(w.base), int64(rss()) - int64(w.baseRSS)
}

// rss is the process's resident set size, from /proc (0 elsewhere).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// TestPreAuthFloodCannotLockOut: 300 idle pre-auth connections from one
// source, plus slowloris clients renewing theirs, and a node that starts
// afterwards still links and calls within a second or two.
func TestPreAuthFloodCannotLockOut(t *testing.T) {
	server := startNode(t, testConfig("iad-1", "iad"), nil)
	mw := watchMemory()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var flood []net.Conn
	for range 300 {
		flood = append(flood, rawDial(t, server))
	}
	for range 8 { // slowloris: a new connection, one byte at a time, forever
		wg.Go(func() {
			for {
				c, err := net.Dial("tcp", server.RPCAddr())
				if err != nil {
					return
				}
				for range 20 {
					if _, err := c.Write([]byte{0x16}); err != nil {
						break
					}
					select {
					case <-stop:
						_ = c.Close()
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
				_ = c.Close()
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })

	start := time.Now()
	client := startNode(t, joinTo(testConfig("lhr-1", "lhr"), server), nil)
	awaitMembers(t, []*Transport{client, server}, "iad-1", "lhr-1")
	joined := time.Since(start)
	callStart := time.Now()
	resp, err := client.Call(ctxTimeout(t, 5*time.Second), "iad-1", "during the flood", nil)
	require.NoError(t, err)
	assert.Equal(t, "iad-1/iad:during the flood:", string(resp))
	linkTime := time.Since(callStart)
	open, evicted := server.preauth.stats()
	heap, rssGrowth := mw.end()
	t.Logf("flood of %d idle + 8 slowloris: new node joined in %v, first call (dial, TLS, SPAKE2, request) in %v; pre-auth open %d, evicted %d; peak heap growth %.1f MiB, RSS growth %.1f MiB",
		len(flood), joined.Round(time.Millisecond), linkTime.Round(time.Millisecond), open, evicted, float64(heap)/(1<<20), float64(rssGrowth)/(1<<20))
	assert.Less(t, linkTime, 2*time.Second)
	assert.LessOrEqual(t, open, DefaultMaxPreAuth)
	assert.Positive(t, evicted, "the cap was reached and old connections were evicted")
}

// TestPreAuthEviction checks the eviction order directly: the oldest of the
// source at its cap, and for the global cap the oldest of the largest
// source.
func TestPreAuthEviction(t *testing.T) {
	p := newPreAuth(2, 3)
	conn := func(ip string) *fakeConn { return &fakeConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}} }
	a1, a2, a3 := conn("10.0.0.1"), conn("10.0.0.1"), conn("10.0.0.1")
	b1, c1 := conn("10.0.0.2"), conn("10.0.0.3")
	p.add(a1)
	p.add(a2)
	p.add(a3) // per-source cap: a1 goes
	assert.True(t, a1.closed.Load())
	assert.False(t, a2.closed.Load())
	p.add(b1)
	eb := p.add(c1) // global cap: the largest source (10.0.0.1) loses its oldest, a2
	assert.True(t, a2.closed.Load())
	assert.False(t, a3.closed.Load())
	assert.False(t, b1.closed.Load())
	p.done(eb)
	open, evicted := p.stats()
	assert.Equal(t, 2, open)
	assert.EqualValues(t, 2, evicted)
}

type fakeConn struct {
	net.Conn
	remote net.Addr
	closed atomic.Bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { c.closed.Store(true); return nil }

// TestHostileAuthenticatedPeerIsBounded: a peer that authenticated (a buggy
// or compromised node) declares huge requests and never finishes them,
// and floods streams it never reads. Memory stays bounded by the budgets,
// the handler of unfinished requests never runs, and other peers keep
// working.
func TestHostileAuthenticatedPeerIsBounded(t *testing.T) {
	var ran atomic.Int64
	h := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		if req.Method == "flood" {
			chunk := make([]byte, 256<<10)
			for range 400 { // 100 MiB, if anyone read it
				if err := req.Send(ctx, chunk); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}
		ran.Add(1)
		return []byte("ok"), nil
	})
	client, server := pair(t, h, func(c *Config) {
		c.MaxInFlightBytes = 64 << 20
		c.MaxRequestSize = 16 << 20
	})
	ctx := ctxTimeout(t, 30*time.Second)
	_, err := client.Call(ctx, "iad-1", "warm", nil)
	require.NoError(t, err)
	ran.Store(0)
	mw := watchMemory()

	c := tlsDial(t, server)
	fr, err := rawAuth(c, testSecret, "iad-1")
	require.NoError(t, err)
	// 40 requests of 16 MiB declared, one byte each sent: the first two fit
	// the half of the budget one link may hold, the rest are refused.
	for id := uint64(1); id <= 40; id++ {
		require.NoError(t, writeFrame(c, &frame{Type: frameRequest, ID: id, Method: "big", N: 16 << 20, Body: []byte{1}}))
	}
	// 50 streams of 100 MiB that this peer never reads beyond the window.
	for id := uint64(100); id < 150; id++ {
		require.NoError(t, writeFrame(c, &frame{Type: frameRequest, ID: id, Method: "flood"}))
	}
	rejects := 0
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	for rejects < 38 {
		f, err := fr.read()
		require.NoError(t, err)
		if f.Type == frameReject {
			rejects++
			assert.Contains(t, string(f.Body), "request bytes in flight")
		}
	}
	// Meanwhile a legitimate peer is served.
	resp, err := client.Call(ctx, "iad-1", "legit", []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, "ok", string(resp))
	heap, rssGrowth := mw.end()
	t.Logf("hostile peer: 40 × 16 MiB declared, 50 unread 100 MiB streams; peak heap growth %.1f MiB, RSS growth %.1f MiB", float64(heap)/(1<<20), float64(rssGrowth)/(1<<20))
	// Two reserved bodies (32 MiB) plus 50 windows of 1 MiB in flight;
	// nowhere near the 640 MiB declared or 5 GiB of streams.
	assert.Less(t, heap, int64(160<<20))
	assert.EqualValues(t, 1, ran.Load(), "only the legitimate request ran")
	_ = c.Close()
}
