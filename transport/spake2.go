package transport

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
)

// SPAKE2 (RFC 9382) over edwards25519 authenticates the link: both ends
// prove they hold the cluster secret without sending anything an observer,
// or a peer that lacks the secret, could test a guess against offline. The
// group operations are filippo.io/edwards25519's constant-time ones.
//
// Deviations from the RFC, each on purpose:
//   - M and N are not the RFC's constants but points derived here by a
//     documented hash-to-point (spakePoint), so anyone can check that
//     nobody knows their discrete logarithms.
//   - w comes from HKDF rather than a memory-hard function: the secret is
//     ≥ 32 random bytes (ValidateSecret), so there is no dictionary to slow
//     down.
//   - The server may hold several secrets (rotation) and answers with one
//     pB per secret; the client, which uses one secret per connection,
//     confirms the one that matches. See serverHandshake.

const (
	pointLen   = 32
	confirmLen = sha256.Size
	// maxSecrets bounds the secrets a node holds (the current one and
	// PreviousSecrets), and so the pB values a client accepts in one
	// challenge: a fake server gets at most this many guesses at a client's
	// secret per connection it receives.
	maxSecrets = 4
)

var (
	// spakeM and spakeN are fixed, independent generators of the prime-order
	// subgroup; see spakePoint.
	spakeM = spakePoint("M")
	spakeN = spakePoint("N")
)

// spakePoint derives one of SPAKE2's fixed points, nothing up the sleeve:
// for counter = 0, 1, …, hash "flypg SPAKE2 edwards25519 <name>" ‖ counter
// with SHA-256, decode the digest as a compressed edwards25519 point, and
// take the first that decodes and is not of small order, multiplied by the
// cofactor 8 so that it lies in the prime-order subgroup. Nobody knows its
// discrete logarithm with respect to the base point, or to the other point,
// which is what SPAKE2's security rests on.
func spakePoint(name string) *edwards25519.Point {
	identity := edwards25519.NewIdentityPoint()
	for counter := range 256 {
		h := sha256.Sum256(append([]byte("flypg SPAKE2 edwards25519 "+name), byte(counter)))
		p, err := new(edwards25519.Point).SetBytes(h[:])
		if err != nil {
			continue
		}
		p.MultByCofactor(p)
		if p.Equal(identity) == 1 {
			continue
		}
		return p
	}
	panic("transport: no SPAKE2 point for " + name) // about half of all digests decode
}

// spakeSecret is one cluster secret, prepared for the handshake.
type spakeSecret struct {
	w      *edwards25519.Scalar
	wBytes []byte
	wM, wN *edwards25519.Point // w·M and w·N, computed once
}

// newSpakeSecret derives the password scalar w from a secret. The label is
// mixed in so that two clusters that share a secret by accident still cannot
// link.
func newSpakeSecret(secret []byte, label string) spakeSecret {
	k, err := hkdf.Key(sha256.New, secret, nil, "flypg/spake2-w/v1\x00"+label, 64)
	if err != nil {
		panic("transport: hkdf: " + err.Error()) // only for lengths > 255*32
	}
	w, err := new(edwards25519.Scalar).SetUniformBytes(k)
	if err != nil {
		panic("transport: " + err.Error()) // only for a length other than 64
	}
	return spakeSecret{
		w:      w,
		wBytes: w.Bytes(),
		wM:     new(edwards25519.Point).ScalarMult(w, spakeM),
		wN:     new(edwards25519.Point).ScalarMult(w, spakeN),
	}
}

// randomScalar is a uniformly random scalar, the ephemeral x or y.
func randomScalar(rng io.Reader) (*edwards25519.Scalar, error) {
	var b [64]byte
	if _, err := io.ReadFull(rng, b[:]); err != nil {
		return nil, err
	}
	return new(edwards25519.Scalar).SetUniformBytes(b[:])
}

// spakeShare computes a party's message: x·P + w·M for the client, y·P +
// w·N for the server (blind is w·M or w·N).
func spakeShare(rng io.Reader, blind *edwards25519.Point) (*edwards25519.Scalar, []byte, error) {
	x, err := randomScalar(rng)
	if err != nil {
		return nil, nil, err
	}
	X := new(edwards25519.Point).ScalarBaseMult(x)
	return x, new(edwards25519.Point).Add(X, blind).Bytes(), nil
}

var errSmallOrder = errors.New("peer's share is of small order")

// spakeKey computes K = h·x·(share − blind), where share is the peer's
// message and blind removes the peer's w·N (or w·M). A share that is not a
// point, or whose K would be the identity (a small-order element, which
// would make K independent of x), is refused.
func spakeKey(x *edwards25519.Scalar, share []byte, blind *edwards25519.Point) ([]byte, error) {
	p, err := new(edwards25519.Point).SetBytes(share)
	if err != nil {
		return nil, fmt.Errorf("peer's share is not a point: %w", err)
	}
	p.Subtract(p, blind)
	p.MultByCofactor(p)
	p.ScalarMult(x, p)
	if p.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, errSmallOrder
	}
	return p.Bytes(), nil
}

// spakeConfirm derives the confirmation MACs of one exchange (RFC 9382 §4):
// TT = len‖A‖len‖B‖len‖pA‖len‖pB‖len‖K‖len‖w with 8-byte little-endian
// lengths; Ke‖Ka = SHA-256(TT); KcA‖KcB = HKDF(Ka, info "ConfirmationKeys" ‖
// AAD); cA = HMAC(KcA, TT), cB = HMAC(KcB, TT). AAD binds the exchange to
// the TLS session (its exported keying material), the protocol versions and
// everything else the handshake negotiated, so a relay that terminates TLS
// on both sides, or tampers with the offers, fails confirmation.
func spakeConfirm(client, server string, pA, pB, K, w, aad []byte) (cA, cB []byte) {
	tt := make([]byte, 0, 6*8+len(client)+len(server)+len(pA)+len(pB)+len(K)+len(w))
	for _, f := range [][]byte{[]byte(client), []byte(server), pA, pB, K, w} {
		tt = binary.LittleEndian.AppendUint64(tt, uint64(len(f)))
		tt = append(tt, f...)
	}
	sum := sha256.Sum256(tt)
	ka := sum[16:]
	kc, err := hkdf.Key(sha256.New, ka, nil, "ConfirmationKeys"+string(aad), 32)
	if err != nil {
		panic("transport: hkdf: " + err.Error())
	}
	mac := func(key []byte) []byte {
		h := hmac.New(sha256.New, key)
		h.Write(tt)
		return h.Sum(nil)
	}
	return mac(kc[:16]), mac(kc[16:])
}
