package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pair starts a caller "lhr-1" and a server "iad-1" running h, both
// configured by mutate.
func pair(t *testing.T, h Handler, mutate ...func(*Config)) (client, server *Transport) {
	t.Helper()
	sc := testConfig("iad-1", "iad")
	sc.Primary = func() bool { return true }
	cc := testConfig("lhr-1", "lhr")
	for _, m := range mutate {
		m(&sc)
		m(&cc)
	}
	server = startNode(t, sc, h)
	client = startNode(t, joinTo(cc, server), nil)
	awaitMembers(t, []*Transport{client, server}, "iad-1", "lhr-1")
	return client, server
}

func TestConcurrentCallsOnOneLink(t *testing.T) {
	client, server := pair(t, HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		// A random delay so that answers overtake each other.
		time.Sleep(time.Duration(mrand.N(3000)) * time.Microsecond)
		return append([]byte(req.Method+"="), req.Body...), nil
	}))
	ctx := ctxTimeout(t, 30*time.Second)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			method, body := fmt.Sprintf("m%d", i), []byte(strings.Repeat("b", i))
			resp, err := client.Call(ctx, "iad-1", method, body)
			switch {
			case err != nil:
				errs <- err
			case string(resp) != method+"="+string(body):
				errs <- fmt.Errorf("call %d got the answer to another request: %.20q", i, resp)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	client.mu.Lock()
	links := len(client.links)
	client.mu.Unlock()
	assert.Equal(t, 1, links, "all calls share one link")
	assert.Len(t, server.snapshotInbound(), 1)
}

// blocker is a handler that reports each request's start and holds it until
// its context ends or it is released.
type blocker struct {
	started  chan *Request
	ended    chan error // ctx.Err() when the handler returns
	release  chan struct{}
	calls    atomic.Int64
	deadline chan time.Time
}

func newBlocker() *blocker {
	return &blocker{started: make(chan *Request, 100), ended: make(chan error, 100), release: make(chan struct{}), deadline: make(chan time.Time, 100)}
}

func (b *blocker) ServeRPC(ctx context.Context, req *Request) ([]byte, error) {
	b.calls.Add(1)
	if dl, ok := ctx.Deadline(); ok {
		b.deadline <- dl
	}
	b.started <- req
	select {
	case <-ctx.Done():
		b.ended <- ctx.Err()
		return nil, ctx.Err()
	case <-b.release:
		b.ended <- nil
		return []byte("released"), nil
	}
}

func TestCancellationReachesTheServer(t *testing.T) {
	b := newBlocker()
	client, _ := pair(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := client.Call(ctx, "iad-1", "slow", nil)
		errc <- err
	}()
	<-b.started
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, ErrUnknownOutcome, "it was sent, so it may have run")
	select {
	case err := <-b.ended:
		require.ErrorIs(t, err, context.Canceled, "the handler's context was cancelled")
	case <-time.After(waitFor):
		t.Fatal("the handler never saw the cancellation")
	}
}

func TestDeadlineReachesTheServer(t *testing.T) {
	b := newBlocker()
	client, _ := pair(t, b)
	ctx := ctxTimeout(t, 300*time.Millisecond)
	want, _ := ctx.Deadline()
	_, err := client.Call(ctx, "iad-1", "slow", nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The server's deadline is the caller's remaining time counted from
	// arrival: never earlier than the caller's, later only by the transit.
	got := <-b.deadline
	assert.False(t, got.Before(want.Add(-time.Millisecond)), "server deadline %v before caller's %v", got, want)
	assert.WithinDuration(t, want, got, time.Second)
	// Either the cancel frame or the shipped deadline ends it, whichever
	// comes first.
	err = <-b.ended
	assert.True(t, errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded), err)
}

func TestUnknownOutcomeIsNeverResent(t *testing.T) {
	b := newBlocker()
	primary := func() bool { return true }
	p1c := testConfig("iad-1", "iad")
	p1c.Primary = primary
	p1 := startNode(t, p1c, b)
	p2c := joinTo(testConfig("iad-2", "iad"), p1)
	p2c.Primary = primary
	p2 := startNode(t, p2c, b)
	client := startNode(t, joinTo(testConfig("lhr-1", "lhr"), p1), nil)
	awaitMembers(t, []*Transport{p1, p2, client}, "iad-1", "iad-2", "lhr-1")
	nodes := map[string]*Transport{"iad-1": p1, "iad-2": p2}

	errc := make(chan error, 1)
	go func() {
		_, _, err := client.CallPrimary(ctxTimeout(t, waitFor), "write", nil)
		errc <- err
	}()
	req := <-b.started
	dropInbound(nodes[req.Conn.t.name])
	err := <-errc
	require.ErrorIs(t, err, ErrUnknownOutcome)
	require.NotErrorIs(t, err, ErrNotSent)
	assert.EqualValues(t, 1, b.calls.Load(), "the request ran once and was not resent")
	select {
	case <-req.Conn.Done():
	case <-time.After(waitFor):
		t.Fatal("Conn.Done not closed when the link died")
	}
}

func TestNotSentGoesToTheNextCandidate(t *testing.T) {
	var live, dead atomic.Int64
	counting := func(n *atomic.Int64, name string) Handler {
		return HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
			n.Add(1)
			return []byte(name), nil
		})
	}
	primary := func() bool { return true }
	dc := testConfig("iad-dead", "iad")
	dc.Primary = primary
	dc.AdvertiseRPCAddr = deadAddr(t) // gossips fine, but its link port is dead
	deadNode := startNode(t, dc, counting(&dead, "iad-dead"))
	lc := joinTo(testConfig("iad-live", "iad"), deadNode)
	lc.Primary = primary
	liveNode := startNode(t, lc, counting(&live, "iad-live"))
	client := startNode(t, joinTo(testConfig("lhr-1", "lhr"), deadNode), nil)
	awaitMembers(t, []*Transport{deadNode, liveNode, client}, "iad-dead", "iad-live", "lhr-1")

	ctx := ctxTimeout(t, waitFor)
	deadM, _ := member(client, "iad-dead")
	liveM, _ := member(client, "iad-live")
	// RTTs that rank the dead one first.
	deadM.RTT, liveM.RTT = time.Nanosecond, time.Second
	order := func([]Member) ([]Member, string) { return []Member{liveM, deadM}, "test order" }
	node, resp, err := client.CallSelect(ctx, order, ErrNoPrimary, "write", nil)
	require.NoError(t, err)
	assert.Equal(t, "iad-live", node)
	assert.Equal(t, "iad-live", string(resp))

	for range 5 {
		node, _, err := client.CallPrimary(ctx, "write", nil)
		require.NoError(t, err)
		assert.Equal(t, "iad-live", node)
	}
	assert.EqualValues(t, 6, live.Load())
	assert.Zero(t, dead.Load())

	// With only the dead one left, ErrNoPrimary says why.
	require.NoError(t, liveNode.Close())
	awaitMembers(t, []*Transport{client}, "iad-dead", "lhr-1")
	_, _, err = client.CallPrimary(ctxTimeout(t, 200*time.Millisecond), "write", nil)
	require.ErrorIs(t, err, ErrNoPrimary)
	assert.Contains(t, err.Error(), "iad-dead")
	assert.Contains(t, err.Error(), "connection refused")
	require.ErrorIs(t, client.WaitPrimary(ctxTimeout(t, 100*time.Millisecond)), ErrNoPrimary)
}

func TestHandlerErrors(t *testing.T) {
	boom := errors.New("boom")
	h := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		switch req.Method {
		case "panic":
			panic("handler bug")
		case "fail":
			return nil, boom
		}
		return []byte("ok"), nil
	})
	client, server := pair(t, h)
	ctx := ctxTimeout(t, waitFor)
	for _, tc := range []struct {
		name string
		from *Transport
	}{{"remote", client}, {"in-process", server}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.from.Call(ctx, "iad-1", "panic", nil)
			var re *RemoteError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, re.Message, "handler bug")

			_, err = tc.from.Call(ctx, "iad-1", "fail", nil)
			require.ErrorAs(t, err, &re)
			assert.Equal(t, "boom", re.Message)
			assert.Equal(t, tc.name == "in-process", errors.Is(err, boom), "the original error survives in-process only")

			resp, err := tc.from.Call(ctx, "iad-1", "ok", nil)
			require.NoError(t, err, "the node survived the panic")
			assert.Equal(t, "ok", string(resp))
		})
	}
}

func TestMaxInFlight(t *testing.T) {
	b := newBlocker()
	client, _ := pair(t, b, func(c *Config) { c.MaxInFlight = 3 })
	ctx := ctxTimeout(t, waitFor)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			_, err := client.Call(ctx, "iad-1", "slow", nil)
			assert.NoError(t, err)
		})
	}
	for range 3 {
		<-b.started
	}
	_, err := client.Call(ctx, "iad-1", "one-too-many", nil)
	require.ErrorIs(t, err, ErrNotSent)
	assert.Contains(t, err.Error(), "too many requests in flight")
	close(b.release)
	wg.Wait()
	assert.EqualValues(t, 3, b.calls.Load())
}

func TestSizeLimits(t *testing.T) {
	var ran atomic.Int64
	h := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		ran.Add(1)
		return bytes.Repeat([]byte("x"), 5000), nil
	})
	client, _ := pair(t, h, func(c *Config) {
		c.MaxFrameSize = 2048
		c.MaxRequestSize = 4096
		c.MaxResponseSize = 4096
	})
	ctx := ctxTimeout(t, waitFor)

	// A request over MaxRequestSize fails before anything is sent.
	for _, call := range []func() error{
		func() error { _, err := client.Call(ctx, "iad-1", "x", make([]byte, 5000)); return err },
		func() error { _, _, err := client.CallPrimary(ctx, "x", make([]byte, 5000)); return err },
		func() error { _, err := client.Open(ctx, "iad-1", "x", make([]byte, 5000)); return err },
	} {
		err := call()
		require.ErrorIs(t, err, ErrFrameTooLarge)
		require.ErrorIs(t, err, ErrNotSent)
	}
	assert.Zero(t, ran.Load())

	// One larger than a frame but within the limit travels in parts; the
	// response, larger than MaxResponseSize, is cut off for Call (the
	// handler ran) but streams whole through Open.
	_, err := client.Call(ctx, "iad-1", "x", make([]byte, 4000))
	require.ErrorIs(t, err, ErrFrameTooLarge)
	require.ErrorIs(t, err, ErrUnknownOutcome, "the handler ran")
	assert.Contains(t, err.Error(), "use Open")
	s, err := client.Open(ctx, "iad-1", "x", make([]byte, 4000))
	require.NoError(t, err)
	got := readStream(t, s)
	assert.Len(t, got, 5000)
	assert.EqualValues(t, 2, ran.Load())
}

func TestOversizedPrefixDoesNotAllocate(t *testing.T) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 0xFFFFFFFF)
	r := bytes.NewReader(nil)
	fr := newFrameReader(r, 4<<20)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(hdr[:])
		fr.r.Reset(r)
		_, err := fr.read()
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatal(err)
		}
	})
	// The error message is the only allocation; nothing is sized by the peer.
	assert.LessOrEqual(t, allocs, 6.0)
}

func TestGracefulClose(t *testing.T) {
	b := newBlocker()
	client, server := pair(t, b)
	ctx := ctxTimeout(t, waitFor)
	inFlight := make(chan error, 1)
	go func() {
		resp, err := client.Call(ctx, "iad-1", "slow", nil)
		if err == nil && string(resp) != "released" {
			err = fmt.Errorf("unexpected %q", resp)
		}
		inFlight <- err
	}()
	<-b.started
	closed := make(chan error, 1)
	go func() { closed <- server.Close() }()

	// New work is turned away cleanly while the old finishes.
	require.Eventually(t, func() bool {
		_, err := client.Call(ctxTimeout(t, time.Second), "iad-1", "new", nil)
		return errors.Is(err, ErrNotSent)
	}, waitFor, 10*time.Millisecond)
	close(b.release)
	require.NoError(t, <-inFlight, "the in-flight request finished")
	require.NoError(t, <-closed)
	_, err := server.Call(ctx, "lhr-1", "x", nil)
	require.ErrorIs(t, err, ErrClosed)
	assert.EqualValues(t, 1, b.calls.Load())
}

func TestLinkReconnectsInBackground(t *testing.T) {
	client, server := pair(t, nil)
	ctx := ctxTimeout(t, waitFor)
	_, err := client.Call(ctx, "iad-1", "warm", nil)
	require.NoError(t, err)
	first := server.snapshotInbound()
	require.Len(t, first, 1)

	dropInbound(server)
	// Without any call, the client dials again.
	require.Eventually(t, func() bool {
		in := server.snapshotInbound()
		return len(in) == 1 && in[0] != first[0]
	}, waitFor, 10*time.Millisecond)
	resp, err := client.Call(ctx, "iad-1", "again", nil)
	require.NoError(t, err)
	assert.Equal(t, "iad-1/iad:again:", string(resp))
}

func TestCustomTLSConfig(t *testing.T) {
	tlsCfg := testTLSConfig(t)
	client, _ := pair(t, nil, func(c *Config) { c.TLS = tlsCfg })
	resp, err := client.Call(ctxTimeout(t, waitFor), "iad-1", "tls", nil)
	require.NoError(t, err)
	assert.Equal(t, "iad-1/iad:tls:", string(resp))
}

func TestPlaintextAndTLSDoNotMix(t *testing.T) {
	client, _ := pair(t, nil)
	c := joinTo(testConfig("syd-1", "syd"), client)
	c.InsecurePlaintext = true
	plain := startNode(t, c, nil)
	awaitMembers(t, []*Transport{plain}, "iad-1", "lhr-1", "syd-1")
	_, err := plain.Call(ctxTimeout(t, waitFor), "iad-1", "plain", nil)
	require.ErrorIs(t, err, ErrNotSent, "a plaintext client cannot talk to a TLS server")

	// Two plaintext nodes link (the opt-out works, authentication included).
	c = joinTo(testConfig("syd-2", "syd"), client)
	c.InsecurePlaintext = true
	plain2 := startNode(t, c, nil)
	awaitMembers(t, []*Transport{plain2}, "iad-1", "lhr-1", "syd-1", "syd-2")
	resp, err := plain2.Call(ctxTimeout(t, waitFor), "syd-1", "plain", nil)
	require.NoError(t, err)
	assert.Equal(t, "syd-1/syd:plain:", string(resp))
}

// testTLSConfig is a self-signed certificate for 127.0.0.1 that both ends
// trust.
func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flypg test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}
}
