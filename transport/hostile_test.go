package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawDial opens a plain TCP connection to tr's link port.
func rawDial(t *testing.T, tr *Transport) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tr.RPCAddr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
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

// rawAuth runs the client handshake on c with key.
func rawAuth(c net.Conn, key []byte, want string) (*frameReader, error) {
	fr := newFrameReader(c, handshakeMaxFrame)
	_, err := clientHandshake(c, fr, key, "intruder", want)
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
	goodKey := deriveKey([]byte(testSecret), defaultLabel, "link")
	wrongKey := deriveKey([]byte("guess"), defaultLabel, "link")

	for _, tc := range []struct {
		name string
		act  func(t *testing.T, c net.Conn)
	}{
		{"garbage", func(t *testing.T, c net.Conn) {
			junk := make([]byte, 1024)
			_, _ = rand.Read(junk)
			_, _ = c.Write(junk)
		}},
		{"empty frame", func(t *testing.T, c net.Conn) { _, _ = c.Write(prefix(0)) }},
		{"oversized length prefix", func(t *testing.T, c net.Conn) { _, _ = c.Write(prefix(0xFFFFFFFF)) }},
		{"large prefix before auth", func(t *testing.T, c net.Conn) { _, _ = c.Write(prefix(handshakeMaxFrame + 1)) }},
		{"truncated frame", func(t *testing.T, c net.Conn) {
			_, _ = c.Write(append(prefix(100), make([]byte, 10)...))
		}},
		{"silent", func(t *testing.T, c net.Conn) {}},
		{"slowloris", func(t *testing.T, c net.Conn) {
			hello := encodeFrame(&frame{Type: frameHello, ID: ProtocolVersion, Method: "slow", Body: newNonce()})
			go func() { // one byte every 50ms: the handshake deadline must cut it off
				for _, b := range hello.Bytes() {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}},
		{"wrong protocol version", func(t *testing.T, c net.Conn) {
			_ = writeFrame(c, &frame{Type: frameHello, ID: 99, Method: "x", Body: newNonce()})
		}},
		{"request before auth", func(t *testing.T, c net.Conn) {
			_ = writeFrame(c, &frame{Type: frameRequest, ID: 1, Method: "x"})
		}},
		{"wrong secret", func(t *testing.T, c net.Conn) {
			_, err := rawAuth(c, wrongKey, "iad-1")
			require.ErrorIs(t, err, ErrAuth)
		}},
		{"reflected proof", func(t *testing.T, c net.Conn) {
			// Without the key, echo the server's own proof back as ours.
			fr := newFrameReader(c, handshakeMaxFrame)
			require.NoError(t, writeFrame(c, &frame{Type: frameHello, ID: ProtocolVersion, Method: "iad-1", Body: newNonce()}))
			ch, err := fr.read()
			require.NoError(t, err)
			require.NoError(t, writeFrame(c, &frame{Type: frameAuth, Body: ch.Body[nonceLen:]}))
		}},
		{"garbage after auth", func(t *testing.T, c net.Conn) {
			_, err := rawAuth(c, goodKey, "iad-1")
			require.NoError(t, err)
			_, _ = c.Write([]byte{0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1})
		}},
		{"oversized prefix after auth", func(t *testing.T, c net.Conn) {
			_, err := rawAuth(c, goodKey, "iad-1")
			require.NoError(t, err)
			_, _ = c.Write(prefix(DefaultMaxFrameSize + 1))
		}},
		{"server frame from a client", func(t *testing.T, c net.Conn) {
			_, err := rawAuth(c, goodKey, "iad-1")
			require.NoError(t, err)
			_ = writeFrame(c, &frame{Type: frameResponse, ID: 1})
		}},
		{"duplicate request id", func(t *testing.T, c net.Conn) {
			_, err := rawAuth(c, goodKey, "iad-1")
			require.NoError(t, err)
			// The first is still running when its id comes again.
			_ = writeFrame(c, &frame{Type: frameRequest, ID: 7, Method: "dup-probe"})
			_ = writeFrame(c, &frame{Type: frameRequest, ID: 7, Method: "dup-probe"})
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
	c := rawDial(t, server)
	fr, err := rawAuth(c, goodKey, "iad-1")
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

func TestHandshakeFlood(t *testing.T) {
	const hsTimeout = 300 * time.Millisecond
	client, server := pair(t, nil, func(c *Config) { c.HandshakeTimeout = hsTimeout })
	ctx := ctxTimeout(t, waitFor)
	_, err := client.Call(ctx, "iad-1", "warm", nil)
	require.NoError(t, err)
	goroutines := runtime.NumGoroutine()

	const n = 3 * maxHandshakes
	conns := make([]net.Conn, 0, n)
	for range n {
		conns = append(conns, rawDial(t, server))
	}
	// Established links keep working during the flood.
	_, err = client.Call(ctx, "iad-1", "during", nil)
	require.NoError(t, err)
	for _, c := range conns {
		requireDropped(t, c, 5*time.Second)
	}
	awaitGoroutines(t, goroutines)
	_, err = client.Call(ctx, "iad-1", "after", nil)
	require.NoError(t, err)
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
