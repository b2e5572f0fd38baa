package transport

// Attacks on the transport found by a security review (round 3), each
// failing before its fix: the weak-secret rules, the gossip port's
// pre-auth limits, eviction under many-address floods, the request budget
// per peer, and log floods.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestObviouslyNonRandomSecretsRefused: ValidateSecret refuses
// "obviously non-random" secrets outside dev mode. Each of these is as
// non-random as a secret gets; each was accepted before the progression,
// decoded-words and keyboard-walk rules.
func TestObviouslyNonRandomSecretsRefused(t *testing.T) {
	counting := make([]byte, 32) // 00 01 02 … 1f
	for i := range counting {
		counting[i] = byte(i)
	}
	for _, tc := range []struct{ name, secret string }{
		// 32 consecutive ASCII characters, '!' to '@'.
		{"ASCII run", "!\"#$%&'()*+,-./0123456789:;<=>?@"},
		// The bytes 0x00…0x1f, as hex text: what a "placeholder" secret looks like.
		{"hex of 00..1f", hex.EncodeToString(counting)},
		{"base64 of 00..1f", base64.StdEncoding.EncodeToString(counting)},
		// The base64 alphabet itself, which decodes to 48 fixed bytes.
		{"base64 alphabet", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"},
		// A dictionary passphrase, refused as raw text, accepted once
		// base64-encoded: the word check is not applied to decoded bytes.
		{"base64 of a passphrase", base64.StdEncoding.EncodeToString([]byte("correct horse battery staple, purple monkey dishwasher"))},
		// A keyboard walk (columns of a QWERTY keyboard).
		{"keyboard walk", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/"},
		// Passphrases, separated or run together.
		{"passphrase, commas", "correct horse battery staple, purple monkey dishwasher"},
		{"passphrase, run together", "correcthorsebatterystaplepurplemonkeydishwasher"},
		{"passphrase, CamelCase", "ThisIsMyVerySecretPasswordForTheClusterOk"},
		{"passphrase with a year", "my super secret production password for flypg 2026"},
		// Passphrases a first version of the pronounceability rule let
		// through (digits, a vowel-poor word, consonant clusters).
		{"pangram with digits", "the quick brown fox jumps over the lazy dog 1234567890"},
		{"run together with digits", "supersecretpasswordforprod12345678"},
		{"sentence", "Hello World, this is the flypg cluster secret."},
		{"year glued on", "my super secret production password for flypg2026"},
		{"CamelCase with clusters", "MyFirstPrizeWinningPasswordForTheFlypgCluster"},
		{"run together, app name", "productiondatabaseclustersecret2026flypgapp"},
		{"consonant clusters", "our nightclub strengths are the best in the whole world"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, ValidateSecret([]byte(tc.secret)), ErrWeakSecret, "an obviously non-random secret is accepted")
		})
	}
}

// gossipLabelHeader is memberlist's stream label header (hasLabelMsg, size,
// label): the label is public, it travels in cleartext.
func gossipLabelHeader(label string) []byte {
	return append([]byte{244, byte(len(label))}, label...)
}

// TestGossipStreamsAreBoundedBeforeAuth: the link refuses to allocate more
// than 1 KiB for an unauthenticated peer, and the gossip port is just as
// reachable: memberlist buffers a whole "encrypted" push/pull of up to
// 20 MiB per TCP connection, from anyone who knows the label (the app's
// name), before any authentication. Without the gossip stream limits, six
// connections that never authenticate made the node hold > 120 MiB.
func TestGossipStreamsAreBoundedBeforeAuth(t *testing.T) {
	cfg := testConfig("iad-1", "iad")
	cfg.Profile = ProfileWAN // production timings: memberlist's TCPTimeout is 30 s
	cfg.Label = "todo-app"
	server := startNode(t, cfg, nil)
	const conns = 6
	const claim = 20<<20 - 1 // just under memberlist's maxPushStateBytes
	junk := make([]byte, 1<<20)
	mw := watchMemory()
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	for range conns {
		c, err := net.Dial("tcp", server.GossipAddr())
		require.NoError(t, err)
		held = append(held, c)
		hdr := gossipLabelHeader("todo-app")
		hdr = append(hdr, 10) // encryptMsg
		hdr = binary.BigEndian.AppendUint32(hdr, claim)
		_, err = c.Write(hdr)
		require.NoError(t, err)
		// Everything but the last byte: memberlist keeps reading, and
		// buffering, until the declared length is there — unless the node
		// hangs up first, which is the defence.
		for sent := 0; sent < claim-1; {
			n := min(len(junk), claim-1-sent)
			if _, err := c.Write(junk[:n]); err != nil {
				break
			}
			sent += n
		}
	}
	// The node hangs up on every one of them (before the fix it kept them
	// all, waiting for the last byte).
	require.Eventually(t, func() bool {
		for _, c := range held {
			if !closedByPeer(c) {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond, "the node still reads a stream past the limit")
	heap, _ := mw.end()
	t.Logf("%d unauthenticated gossip connections: peak heap growth %.1f MiB", conns, float64(heap)/(1<<20))
	assert.Less(t, heap, int64(16<<20), "an unauthenticated peer made the node buffer %.0f MiB", float64(heap)/(1<<20))
}

// TestGossipStreamsCappedPerSource: the link caps pre-auth connections per
// source; the gossip port, open to the same network, kept 300 idle
// connections from one source for memberlist's TCPTimeout (30 s with the
// WAN profile), each with a goroutine and a file descriptor. Enough of them
// exhaust the process's descriptors, and then the link's accept, the gossip
// listener and the PostgreSQL pools all fail: a lock-out from one source.
func TestGossipStreamsCappedPerSource(t *testing.T) {
	cfg := testConfig("iad-1", "iad")
	cfg.Profile = ProfileWAN
	server := startNode(t, cfg, nil)
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range 300 {
		c, err := net.Dial("tcp", server.GossipAddr())
		require.NoError(t, err)
		conns = append(conns, c)
	}
	open := func() int {
		n := 0
		for _, c := range conns {
			if !closedByPeer(c) {
				n++
			}
		}
		return n
	}
	assert.Eventually(t, func() bool { return open() <= maxGossipStreamsPerSource }, waitFor, 50*time.Millisecond,
		"the gossip port has no per-source cap on unauthenticated connections")
	t.Logf("idle gossip connections from one source still open: %d of %d", open(), len(conns))
}

// closedByPeer reports whether the other end closed c: reading what it
// sent (memberlist answers a failed stream with an error message) ends in
// an error other than a short deadline's.
func closedByPeer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestManySourceFloodCannotLockOut: an attacker with many addresses (any
// IPv6 host has a /64; here 127.1.0.0/16 on loopback) holds one idle
// connection per address. When the global cap evicted "the oldest, from the
// source with the most", every source had one, ties went to the oldest, and
// a legitimate node whose handshake takes a few WAN round trips was always
// the oldest by the time it would finish: about 1000 dials/s (no TLS, no
// bytes) kept a peer 80 ms away from ever linking. Connections that sent
// nothing now go first.
func TestManySourceFloodCannotLockOut(t *testing.T) {
	linked, report := floodWhileLinking(t, func(g, i int) net.IP {
		n := g*8192 + i%8192
		return net.IPv4(127, 1, byte(n/250), byte(n%250+1))
	})
	t.Log(report)
	assert.True(t, linked, "a legitimate WAN peer could not link during a many-address flood of idle connections")
}

// TestSingleSourceFloodCannotLockOut is the control for the test above:
// the same flood from one address only evicts itself, and the peer 80 ms
// away links at once.
func TestSingleSourceFloodCannotLockOut(t *testing.T) {
	linked, report := floodWhileLinking(t, func(g, i int) net.IP { return net.IPv4(127, 1, 0, 1) })
	t.Log(report)
	assert.True(t, linked, "a legitimate WAN peer could not link during a one-address flood of idle connections")
}

// floodWhileLinking floods a server's link port with idle connections from
// the addresses src gives (goroutine g, dial i) while a peer 80 ms away
// makes its first call, for up to 5 s. It reports whether the peer linked.
func floodWhileLinking(t *testing.T, src func(g, i int) net.IP) (linked bool, report string) {
	rpc := deadAddr(t)
	sc := testConfig("iad-1", "iad")
	sc.RPCAddr = rpc
	sc.AdvertiseRPCAddr = latencyProxy(t, rpc, 40*time.Millisecond) // the legitimate peer is 80 ms away
	server := startNode(t, sc, nil)
	client := startNode(t, joinTo(testConfig("lhr-1", "lhr"), server), nil)
	awaitMembers(t, []*Transport{client, server}, "iad-1", "lhr-1")

	// Sanity: the attacker's sources exist.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src(0, 0)}}
	c, err := d.Dial("tcp", rpc)
	if err != nil {
		require.NoError(t, err, "dial from %v (Linux routes all of 127/8 to loopback)", src(0, 0))
	}
	_ = c.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var dials atomic.Int64
	for g := range 2 {
		wg.Go(func() {
			ring := make([]net.Conn, 256)
			defer func() {
				for _, c := range ring {
					if c != nil {
						_ = c.Close()
					}
				}
			}()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src(g, i)}, Timeout: time.Second}
				c, err := d.Dial("tcp", rpc)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				dials.Add(1)
				time.Sleep(time.Millisecond) // under 1000 dials/s per goroutine: a modest flood
				if old := ring[i%len(ring)]; old != nil {
					_ = old.Close()
				}
				ring[i%len(ring)] = c
			}
		})
	}
	tries := 0
	var lastErr error
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		tries++
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.Call(ctx, "iad-1", "during the flood", nil)
		cancel()
		if err == nil {
			linked = true
			break
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	_, evicted := server.preauth.stats()
	report = fmt.Sprintf("flood: %d dials, %d evicted; legitimate peer: %d calls tried in %v, linked %v; last error: %v",
		dials.Load(), evicted, tries, took.Round(time.Millisecond), linked, lastErr)

	// Without the flood the same peer links: a failure above was the flood.
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client.Call(ctx, "iad-1", "after the flood", nil)
		return err == nil
	}, waitFor, 100*time.Millisecond)
	return linked, report
}

// TestPreAuthIPv6PrefixIsOneNetwork: the global eviction rule, without a
// network. One host's /64 (2^64 addresses, what any IPv6 host is routed)
// counted as 2^64 sources, so its 128 idle connections pushed out a
// legitimate node's handshake from another network. Grouped by /64 for the
// global choice, the flood only evicts itself.
func TestPreAuthIPv6PrefixIsOneNetwork(t *testing.T) {
	p := newPreAuth(DefaultMaxPreAuthSource, DefaultMaxPreAuth)
	conn := func(ip string) *fakeConn { return &fakeConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 7947}} }
	legit := conn("fdaa:0:1:a7c::2") // another node, another /64, mid-handshake
	p.add(legit)
	for i := range DefaultMaxPreAuth {
		p.add(conn(fmt.Sprintf("fdaa:0:1:a7b:bb:0:%x:%x", i/0x10000, i%0x10000+1))) // all in one /64
	}
	assert.False(t, legit.closed.Load(), "%d idle connections from one /64 evicted another node's handshake", DefaultMaxPreAuth)
}

// TestRefusedPartialRequestsLeaveNothing: a request refused at its first
// frame whose declared size exceeds its first part left a "discard"
// assembly (and a timer) behind for IdleTimeout, not counted towards
// MaxInFlight: one authenticated peer declaring requests over
// MaxRequestSize made the node keep one per frame, without bound, and
// every new request walked all of them under the link's lock (quadratic:
// FLYPG_ATTACK_N=40000 took 30 s of a core). A refusal now leaves nothing.
func TestRefusedPartialRequestsLeaveNothing(t *testing.T) {
	_, server := pair(t, whoAmI("iad-1", "iad"), func(c *Config) {
		c.IdleTimeout = 30 * time.Second
		c.MaxInFlight = 64
	})
	c := tlsDial(t, server)
	require.NoError(t, c.SetDeadline(time.Time{}))
	fr, err := rawAuth(c, testSecret, "iad-1")
	require.NoError(t, err)
	n := 3000
	if s := os.Getenv("FLYPG_ATTACK_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	var rejects atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			f, err := fr.read()
			if err != nil {
				return
			}
			if f.Type == frameReject {
				rejects.Add(1)
			}
		}
	}()
	mw := watchMemory()
	start := time.Now()
	bw := bufio.NewWriter(c)
	for id := uint64(1); id <= uint64(n); id++ {
		require.NoError(t, writeFrame(bw, &frame{Type: frameRequest, ID: id, Method: "x", N: DefaultMaxRequestSize + 1, Body: []byte{1}}))
	}
	require.NoError(t, bw.Flush())
	require.Eventually(t, func() bool { return rejects.Load() == int64(n) }, 5*time.Minute, 10*time.Millisecond)
	held := 0
	for _, sc := range server.snapshotInbound() {
		if sc.peer == "intruder" {
			sc.mu.Lock()
			held = len(sc.partial)
			sc.mu.Unlock()
		}
	}
	took := time.Since(start)
	heap, _ := mw.end()
	fb := encodeFrame(&frame{Type: frameRequest, ID: uint64(n), Method: "x", N: DefaultMaxRequestSize + 1, Body: []byte{1}})
	per := fb.Len()
	fb.free()
	t.Logf("%d refused requests (%.1f KiB sent) in %v: the server keeps %d assemblies for them (MaxInFlight 64); peak heap growth %.1f MiB",
		n, float64(n*per)/1024, took.Round(time.Millisecond), held, float64(heap)/(1<<20))
	assert.LessOrEqual(t, held, 64, "refused requests accumulate server state without bound")
	_ = c.Close()
	<-readDone
}

// countingHandler counts log records at or above Warn.
type countingHandler struct{ warns *atomic.Int64 }

func (h countingHandler) Enabled(_ context.Context, l slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestFailedHandshakeWarningsAreRateLimited: a failed authentication is
// worth a warning, but a peer without the secret produces one at will
// (complete TLS, send a frame of the wrong type), each carrying a name of
// its choosing: at most one warning per interval.
func TestFailedHandshakeWarningsAreRateLimited(t *testing.T) {
	var warns atomic.Int64
	cfg := testConfig("iad-1", "iad")
	cfg.Logger = slog.New(countingHandler{&warns})
	server := startNode(t, cfg, nil)
	base := warns.Load()
	const n = 100
	for i := range n {
		c := tlsDial(t, server)
		_ = writeFrame(c, &frame{Type: frameHello, Method: fmt.Sprintf("fake-node-%d", i), Body: []byte("short")})
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close() // the node logged before it hung up
	}
	got := warns.Load() - base
	t.Logf("%d unauthenticated connections produced %d warnings", n, got)
	assert.Less(t, got, int64(10), "an unauthenticated peer writes warnings at will")
}

// TestOnePeerHoldsAtMostHalfTheBudget: one peer — however buggy — may hold
// half the request budget, so that it cannot starve the others. The cap
// was per link: one node opened two links, declared a body of half the
// budget on each and sent a byte of it now and then (which resets the
// stall timer), and every other node's requests with a body were refused.
func TestOnePeerHoldsAtMostHalfTheBudget(t *testing.T) {
	const budget = 8 << 20
	client, server := pair(t, whoAmI("iad-1", "iad"), func(c *Config) {
		c.MaxInFlightBytes = budget
		c.MaxRequestSize = budget / 2
		c.KeepAlive = 200 * time.Millisecond
		c.IdleTimeout = time.Second
	})
	ctx := ctxTimeout(t, waitFor)
	_, err := client.Call(ctx, "iad-1", "warm", []byte("x"))
	require.NoError(t, err)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	for range 2 {
		c := tlsDial(t, server)
		require.NoError(t, c.SetDeadline(time.Time{}))
		fr, err := rawAuth(c, testSecret, "iad-1")
		require.NoError(t, err)
		require.NoError(t, writeFrame(c, &frame{Type: frameRequest, ID: 1, Method: "x", N: budget / 2, Body: []byte{1}}))
		wg.Go(func() { // read (pings are the server's business; we answer nothing)
			for {
				if _, err := fr.read(); err != nil {
					return
				}
			}
		})
		wg.Go(func() { // a byte of the body, and a ping, twice per IdleTimeout
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				case <-time.After(400 * time.Millisecond):
				}
				if writeFrame(c, &frame{Type: frameRequestPart, ID: 1, Body: []byte{1}}) != nil ||
					writeFrame(c, &frame{Type: framePing, ID: 1}) != nil {
					return
				}
			}
		})
	}
	time.Sleep(3 * time.Second) // three IdleTimeouts
	server.bytesMu.Lock()
	held := server.bytesInFlight
	server.bytesMu.Unlock()
	_, err = client.Call(ctx, "iad-1", "legit", []byte("a small request"))
	t.Logf("after 3 × IdleTimeout one peer holds %d of %d budget bytes; another node's call: %v", held, budget, err)
	assert.LessOrEqual(t, held, int64(budget/2), "one peer holds more than half the budget")
	assert.NoError(t, err, "one authenticated peer starves every other node")
}

// TestTricklingBodyIsDropped: a part now and then resets a body's stall
// timer, but a body must still arrive at minBodyRate on average: one that
// trickles in is dropped at its deadline and its budget freed.
func TestTricklingBodyIsDropped(t *testing.T) {
	_, server := pair(t, whoAmI("iad-1", "iad"), func(c *Config) {
		c.KeepAlive = 200 * time.Millisecond
		c.IdleTimeout = time.Second
	})
	const total = 4 * minBodyRate // a deadline of 4 s, four IdleTimeouts
	c := tlsDial(t, server)
	require.NoError(t, c.SetDeadline(time.Time{}))
	fr, err := rawAuth(c, testSecret, "iad-1")
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, writeFrame(c, &frame{Type: frameRequest, ID: 1, Method: "x", N: total, Body: []byte{1}}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); _ = c.Close(); wg.Wait() })
	var rejected atomic.Bool
	wg.Go(func() {
		for {
			f, err := fr.read()
			if err != nil {
				return
			}
			if f.Type == frameReject && f.ID == 1 {
				rejected.Store(true)
			}
		}
	})
	wg.Go(func() { // a byte and a ping, three times per IdleTimeout
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if writeFrame(c, &frame{Type: frameRequestPart, ID: 1, Body: []byte{1}}) != nil ||
				writeFrame(c, &frame{Type: framePing, ID: 1}) != nil {
				return
			}
		}
	})
	inFlight := func() int64 {
		server.bytesMu.Lock()
		defer server.bytesMu.Unlock()
		return server.bytesInFlight
	}
	require.Eventually(t, func() bool { return inFlight() == total }, waitFor, 10*time.Millisecond, "the body is being received")
	require.Eventually(t, func() bool { return inFlight() == 0 }, waitFor, 10*time.Millisecond, "a trickling body keeps its budget")
	took := time.Since(start)
	t.Logf("trickling body dropped after %v", took.Round(time.Millisecond))
	assert.GreaterOrEqual(t, took, 2*time.Second, "the parts kept resetting the stall timer, so the deadline dropped it")
	assert.Eventually(t, rejected.Load, waitFor, 10*time.Millisecond, "the caller is told the request did not run")
}
