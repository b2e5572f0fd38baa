package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"time"
)

const (
	nonceLen = 32
	macLen   = sha256.Size
	// maxNameLen bounds a node name in the handshake.
	maxNameLen = 256
)

const (
	roleClient = "client"
	roleServer = "server"
)

// handshakeMAC proves knowledge of the link key for one role of one
// handshake. Everything is length-prefixed so no two different transcripts
// hash alike; the role makes a server's proof useless as a client's (and vice
// versa), which defeats reflection; the two fresh nonces defeat replay.
func handshakeMAC(key []byte, role, client, server string, nonceC, nonceS []byte) []byte {
	h := hmac.New(sha256.New, key)
	field := func(h hash.Hash, b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(h, []byte("flypg link handshake"))
	field(h, []byte{ProtocolVersion})
	field(h, []byte(role))
	field(h, []byte(client))
	field(h, []byte(server))
	field(h, nonceC)
	field(h, nonceS)
	return h.Sum(nil)
}

func newNonce() []byte {
	b := make([]byte, nonceLen)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
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

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: bad node name (%d bytes)", ErrAuth, len(name))
	}
	return nil
}

// serverHandshake authenticates a connecting client and proves our own
// knowledge of the key. It returns the client's node name. The caller bounds
// it in time (connection deadline) and in frame size (fr.max).
func serverHandshake(rw io.Writer, fr *frameReader, key []byte, self string) (string, error) {
	hello, err := readHandshakeFrame(fr, frameHello)
	if err != nil {
		return "", err
	}
	if hello.ID != ProtocolVersion {
		return "", fmt.Errorf("%w: client speaks protocol %d, we speak %d", ErrAuth, hello.ID, ProtocolVersion)
	}
	client := hello.Method
	if err := checkName(client); err != nil {
		return "", err
	}
	if len(hello.Body) != nonceLen {
		return "", fmt.Errorf("%w: client nonce is %d bytes", ErrAuth, len(hello.Body))
	}
	nonceC := hello.Body
	nonceS := newNonce()
	proof := handshakeMAC(key, roleServer, client, self, nonceC, nonceS)
	if err := writeFrame(rw, &frame{Type: frameChallenge, ID: ProtocolVersion, Method: self, Body: append(nonceS, proof...)}); err != nil {
		return "", err
	}
	auth, err := readHandshakeFrame(fr, frameAuth)
	if err != nil {
		return "", err
	}
	want := handshakeMAC(key, roleClient, client, self, nonceC, nonceS)
	if !hmac.Equal(auth.Body, want) {
		return "", fmt.Errorf("%w: client %q did not prove the cluster secret", ErrAuth, client)
	}
	if err := writeFrame(rw, &frame{Type: frameWelcome}); err != nil {
		return "", err
	}
	return client, nil
}

// clientHandshake authenticates to a server we expect to be node want, and
// returns the round-trip time of its first exchange.
func clientHandshake(rw io.Writer, fr *frameReader, key []byte, self, want string) (time.Duration, error) {
	nonceC := newNonce()
	start := time.Now()
	if err := writeFrame(rw, &frame{Type: frameHello, ID: ProtocolVersion, Method: self, Body: nonceC}); err != nil {
		return 0, err
	}
	ch, err := readHandshakeFrame(fr, frameChallenge)
	if err != nil {
		return 0, err
	}
	rtt := time.Since(start)
	if ch.ID != ProtocolVersion {
		return 0, fmt.Errorf("%w: server speaks protocol %d, we speak %d", ErrAuth, ch.ID, ProtocolVersion)
	}
	server := ch.Method
	if len(ch.Body) != nonceLen+macLen {
		return 0, fmt.Errorf("%w: malformed challenge", ErrAuth)
	}
	nonceS, proof := ch.Body[:nonceLen], ch.Body[nonceLen:]
	if !hmac.Equal(proof, handshakeMAC(key, roleServer, self, server, nonceC, nonceS)) {
		return 0, fmt.Errorf("%w: server %q did not prove the cluster secret (different secrets?)", ErrAuth, server)
	}
	// Only now is the name trustworthy. A different node at the address we
	// dialled (a restart reusing the port) is not the node the caller
	// asked for: a request pinned to one node must not land on another.
	if server != want {
		return 0, fmt.Errorf("transport: the address is now served by node %q, not %q", server, want)
	}
	if err := writeFrame(rw, &frame{Type: frameAuth, Body: handshakeMAC(key, roleClient, self, server, nonceC, nonceS)}); err != nil {
		return 0, err
	}
	if _, err := readHandshakeFrame(fr, frameWelcome); err != nil {
		return 0, fmt.Errorf("%w: server %q refused our proof: %w", ErrAuth, server, err)
	}
	return rtt, nil
}
