package transport

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// The link handshake runs inside TLS, before a connection serves anything:
//
//	client → server  hello     name_c; versions min–max, client limits, pA
//	server → client  challenge name_s; chosen version, server limits, pB_1…pB_k, cB_1…cB_k
//	client → server  auth      j, cA_j
//	server → client  welcome
//
// pA and pB_j are SPAKE2 shares (spake2.go): the client's from the one
// secret it tries on this connection, the server's one per secret it
// accepts (k ≤ maxSecrets). The server confirms first, but its cB_j are MACs
// under keys an attacker cannot compute without the secret, so they reveal
// nothing offline; a client that verifies none of them sends no proof at all
// and hangs up. The layout of these four messages is the same in every
// protocol version, so that version negotiation itself never breaks.

const (
	// helloLen is a hello body: min u16, max u16, max frame u32, stream
	// window u32, pA.
	helloLen = 12 + pointLen
	// challengeHead is a challenge body before the shares: version u16,
	// server min u16, server max u16, max frame u32, max request u32, k u8.
	challengeHead = 15
	authLen       = 1 + confirmLen
	// maxNameLen bounds a node name in the handshake.
	maxNameLen = 256
	// exporterLabel names the TLS keying material that binds the SPAKE2
	// exchange to its TLS session (RFC 8446 §7.5).
	exporterLabel = "EXPORTER-flypg-link-spake2"
)

// handshakeParams is one side's part of a handshake.
type handshakeParams struct {
	self       string
	secrets    []spakeSecret // current first; a client uses one per connection
	minV, maxV int
	// This side's limits, announced to the peer: the largest frame it
	// reads, the largest request body it accepts (server), the window it
	// grants each response stream (client).
	maxFrame, maxRequest, window int
	binding                      []byte // TLS exported keying material; nil in plaintext
	rng                          io.Reader
}

// session is what a completed handshake established.
type session struct {
	peer    string
	version int
	// The peer's announced limits.
	peerMaxFrame, peerMaxRequest, peerWindow int
	secret                                   int // index of the secret that matched
	rtt                                      time.Duration
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: bad node name (%d bytes)", ErrAuth, len(name))
	}
	return nil
}

// handshakeAAD binds the confirmations to the TLS session and to every byte
// both sides said before the shares.
func handshakeAAD(binding, hello, head []byte) []byte {
	aad := make([]byte, 0, 64+len(binding)+len(hello)+len(head))
	aad = append(aad, "flypg link handshake"...)
	for _, f := range [][]byte{binding, hello, head} {
		aad = binary.BigEndian.AppendUint32(aad, uint32(len(f)))
		aad = append(aad, f...)
	}
	return aad
}

func writeFrame(w io.Writer, f *frame) error {
	fb := encodeFrame(f)
	defer fb.free()
	_, err := w.Write(fb.Bytes())
	return err
}

// readHandshakeFrame reads a frame and insists on its type.
func readHandshakeFrame(fr *frameReader, want frameType) (frame, error) {
	f, err := fr.read()
	if err != nil {
		return frame{}, err
	}
	if f.Type != want {
		return frame{}, fmt.Errorf("%w: got frame type %d during the handshake, want %d", ErrAuth, f.Type, want)
	}
	return f, nil
}

// negotiate picks the highest version both ranges contain; 0 if none.
func negotiate(aMin, aMax, bMin, bMax int) int {
	v := min(aMax, bMax)
	if v < max(aMin, bMin) || v < 1 {
		return 0
	}
	return v
}

func u32(n int) uint32 { return uint32(min(max(n, 0), 1<<32-1)) }

// serverHandshake authenticates a connecting client and proves our own
// knowledge of the secret. The caller bounds it in time (a connection
// deadline) and in frame size (fr.max).
func serverHandshake(rw io.Writer, fr *frameReader, hp *handshakeParams) (session, error) {
	hello, err := readHandshakeFrame(fr, frameHello)
	if err != nil {
		return session{}, err
	}
	client := hello.Method
	if err := checkName(client); err != nil {
		return session{}, err
	}
	if client == hp.self {
		// Our own name from outside: a reflection of one of our own
		// connections, or an impostor; a node never dials itself.
		return session{}, fmt.Errorf("%w: a client claims to be this node (%q)", ErrAuth, client)
	}
	if len(hello.Body) != helloLen {
		return session{}, fmt.Errorf("%w: malformed hello (%d bytes)", ErrAuth, len(hello.Body))
	}
	b := hello.Body
	cMin, cMax := int(binary.BigEndian.Uint16(b[0:])), int(binary.BigEndian.Uint16(b[2:]))
	s := session{
		peer:         client,
		version:      negotiate(cMin, cMax, hp.minV, hp.maxV),
		peerMaxFrame: int(binary.BigEndian.Uint32(b[4:])),
		peerWindow:   int(binary.BigEndian.Uint32(b[8:])),
	}
	pA := b[12:helloLen]

	head := make([]byte, challengeHead, challengeHead+2*maxSecrets*pointLen)
	binary.BigEndian.PutUint16(head[0:], uint16(s.version))
	binary.BigEndian.PutUint16(head[2:], uint16(hp.minV))
	binary.BigEndian.PutUint16(head[4:], uint16(hp.maxV))
	binary.BigEndian.PutUint32(head[6:], u32(hp.maxFrame))
	binary.BigEndian.PutUint32(head[10:], u32(hp.maxRequest))
	if s.version == 0 {
		// Say why before hanging up, so the client reports it clearly.
		_ = writeFrame(rw, &frame{Type: frameChallenge, Method: hp.self, Body: head})
		return session{}, fmt.Errorf("%w: client %q speaks versions %d–%d, we speak %d–%d", ErrIncompatible, client, cMin, cMax, hp.minV, hp.maxV)
	}
	if s.peerMaxFrame < handshakeMaxFrame || s.peerWindow < minChunk {
		// Frames or windows that small would make us cut responses into
		// slivers: a client that asks for them is broken or hostile.
		return session{}, fmt.Errorf("%w: client %q reads frames of at most %d bytes with a window of %d", ErrAuth, client, s.peerMaxFrame, s.peerWindow)
	}
	k := min(len(hp.secrets), maxSecrets)
	head[14] = byte(k)
	aad := handshakeAAD(hp.binding, hello.Body, head)
	shares := make([][]byte, k)
	cAs := make([][]byte, k)
	cBs := make([][]byte, k)
	for j := range k {
		sec := &hp.secrets[j]
		y, pB, err := spakeShare(hp.rng, sec.wN)
		if err != nil {
			return session{}, err
		}
		K, err := spakeKey(y, pA, sec.wM)
		if err != nil {
			return session{}, fmt.Errorf("%w: client %q: %w", ErrAuth, client, err)
		}
		shares[j] = pB
		cAs[j], cBs[j] = spakeConfirm(client, hp.self, pA, pB, K, sec.wBytes, aad)
	}
	body := head
	for _, p := range shares {
		body = append(body, p...)
	}
	for _, c := range cBs {
		body = append(body, c...)
	}
	if err := writeFrame(rw, &frame{Type: frameChallenge, Method: hp.self, Body: body}); err != nil {
		return session{}, err
	}
	auth, err := readHandshakeFrame(fr, frameAuth)
	if err != nil {
		return session{}, err
	}
	if len(auth.Body) != authLen || int(auth.Body[0]) >= k || !hmac.Equal(auth.Body[1:], cAs[auth.Body[0]]) {
		return session{}, fmt.Errorf("%w: client %q did not prove the cluster secret", ErrAuth, client)
	}
	s.secret = int(auth.Body[0])
	if err := writeFrame(rw, &frame{Type: frameWelcome}); err != nil {
		return session{}, err
	}
	return s, nil
}

// clientHandshake authenticates to a server we expect to be node want, with
// secret number idx of ours.
func clientHandshake(rw io.Writer, fr *frameReader, hp *handshakeParams, idx int, want string) (session, error) {
	sec := &hp.secrets[idx]
	x, pA, err := spakeShare(hp.rng, sec.wM)
	if err != nil {
		return session{}, err
	}
	hello := make([]byte, 0, helloLen)
	hello = binary.BigEndian.AppendUint16(hello, uint16(hp.minV))
	hello = binary.BigEndian.AppendUint16(hello, uint16(hp.maxV))
	hello = binary.BigEndian.AppendUint32(hello, u32(hp.maxFrame))
	hello = binary.BigEndian.AppendUint32(hello, u32(hp.window))
	hello = append(hello, pA...)
	start := time.Now()
	if err := writeFrame(rw, &frame{Type: frameHello, Method: hp.self, Body: hello}); err != nil {
		return session{}, err
	}
	ch, err := readHandshakeFrame(fr, frameChallenge)
	if err != nil {
		return session{}, err
	}
	s := session{peer: ch.Method, rtt: time.Since(start), secret: idx}
	if s.peer == hp.self {
		return session{}, fmt.Errorf("%w: the server claims to be this node (%q): a reflection", ErrAuth, s.peer)
	}
	b := ch.Body
	if len(b) < challengeHead {
		return session{}, fmt.Errorf("%w: malformed challenge", ErrAuth)
	}
	s.version = int(binary.BigEndian.Uint16(b[0:]))
	sMin, sMax := int(binary.BigEndian.Uint16(b[2:])), int(binary.BigEndian.Uint16(b[4:]))
	if s.version == 0 {
		return session{}, fmt.Errorf("%w: server %q speaks versions %d–%d, we speak %d–%d", ErrIncompatible, s.peer, sMin, sMax, hp.minV, hp.maxV)
	}
	if s.version < hp.minV || s.version > hp.maxV || s.version != negotiate(hp.minV, hp.maxV, sMin, sMax) {
		return session{}, fmt.Errorf("%w: server %q chose version %d from %d–%d and %d–%d", ErrAuth, s.peer, s.version, hp.minV, hp.maxV, sMin, sMax)
	}
	s.peerMaxFrame = int(binary.BigEndian.Uint32(b[6:]))
	s.peerMaxRequest = int(binary.BigEndian.Uint32(b[10:]))
	k := int(b[14])
	if k < 1 || k > maxSecrets || len(b) != challengeHead+2*k*pointLen {
		return session{}, fmt.Errorf("%w: malformed challenge", ErrAuth)
	}
	aad := handshakeAAD(hp.binding, hello, b[:challengeHead])
	match := -1
	var cA []byte
	for j := range k {
		pB := b[challengeHead+j*pointLen : challengeHead+(j+1)*pointLen]
		cB := b[challengeHead+(k+j)*confirmLen : challengeHead+(k+j+1)*confirmLen]
		K, err := spakeKey(x, pB, sec.wN)
		if err != nil {
			continue
		}
		a, wantB := spakeConfirm(hp.self, s.peer, pA, pB, K, sec.wBytes, aad)
		if hmac.Equal(cB, wantB) && match < 0 {
			match, cA = j, a
		}
	}
	if match < 0 {
		return session{}, fmt.Errorf("%w: server %q did not prove the cluster secret (different secrets?)", ErrAuth, s.peer)
	}
	if err := checkName(s.peer); err != nil {
		return session{}, err
	}
	// Only now is the name trustworthy. A different node at the address we
	// dialled (a restart reusing the port) is not the node the caller
	// asked for: a request pinned to one node must not land on another.
	if s.peer != want {
		return session{}, fmt.Errorf("%w: the address is now served by node %q, not %q", errWrongNode, s.peer, want)
	}
	if s.peerMaxFrame < handshakeMaxFrame {
		return session{}, fmt.Errorf("%w: server %q reads frames of at most %d bytes", ErrAuth, s.peer, s.peerMaxFrame)
	}
	if err := writeFrame(rw, &frame{Type: frameAuth, Body: append([]byte{byte(match)}, cA...)}); err != nil {
		return session{}, err
	}
	if _, err := readHandshakeFrame(fr, frameWelcome); err != nil {
		if errors.Is(err, ErrAuth) {
			return session{}, fmt.Errorf("server %q refused our proof: %w", s.peer, err)
		}
		// The server proved the secret we proved with, so it has no reason
		// to refuse ours: a connection lost here was evicted (a pre-auth
		// flood) or cut, which is worth a retry — not ErrAuth, which would
		// make us try a previous secret.
		return session{}, fmt.Errorf("transport: server %q closed the connection before accepting our proof: %w", s.peer, err)
	}
	return s, nil
}

var errWrongNode = errors.New("transport: wrong node")
