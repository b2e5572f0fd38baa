package flypg

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/flypg/flypg/lsn"
)

// A causal token carries a commit LSN from one request to the next, which
// may land on any node in any region: AfterLSN(ctx, lsn) there waits for
// it. Tokens are opaque to clients: HMAC-SHA256 over the LSN, the database
// it belongs to, the cluster and an expiry, keyed from the cluster secret,
// so a forged, foreign or expired token is refused and never waited for.

// DefaultTokenTTL is how long a token is honoured. Past it, replication
// has long caught up, and a stale token must not make a request wait.
const DefaultTokenTTL = time.Hour

// ErrInvalidToken is returned by ParseToken for a token that is malformed,
// forged, made by another cluster or for another database, or expired.
var ErrInvalidToken = errors.New("flypg: invalid causal token")

const (
	tokenVersion = 1
	tokenBody    = 1 + 8 + 8 + 8 // version, expiry (unix seconds), system identifier, LSN
	tokenMACLen  = 16            // truncated HMAC-SHA256: 128 bits is beyond forging
)

// Token returns a causal token for l, a commit LSN of the node's own
// database (Tracked.LSN), valid for DefaultTokenTTL. In dev mode, where
// there is nothing to wait for, it returns "".
func (n *Node) Token(l lsn.LSN) string {
	return n.tokenAt(l, time.Now().Add(DefaultTokenTTL))
}

func (n *Node) tokenAt(l lsn.LSN, expiry time.Time) string {
	if n.role == roleDev || l == 0 {
		return ""
	}
	var b [tokenBody + tokenMACLen]byte
	b[0] = tokenVersion
	binary.BigEndian.PutUint64(b[1:], uint64(expiry.Unix()))
	binary.BigEndian.PutUint64(b[9:], n.selfSysID())
	binary.BigEndian.PutUint64(b[17:], uint64(l))
	copy(b[tokenBody:], tokenMAC(n.tokenKeys()[0], b[:tokenBody]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseToken returns the LSN in a token made by this cluster (with the
// current or a previous secret) for the node's own database, unless it has
// expired. Any other token is ErrInvalidToken: a caller ignores it as if
// absent.
func (n *Node) ParseToken(tok string) (lsn.LSN, error) {
	if n.role == roleDev || tok == "" {
		return 0, ErrInvalidToken
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != tokenBody+tokenMACLen || b[0] != tokenVersion {
		return 0, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	ok := false
	for _, key := range n.tokenKeys() {
		if hmac.Equal(b[tokenBody:], tokenMAC(key, b[:tokenBody])) {
			ok = true
			break
		}
	}
	if !ok {
		return 0, fmt.Errorf("%w: not signed by this cluster", ErrInvalidToken)
	}
	if time.Now().Unix() > int64(binary.BigEndian.Uint64(b[1:])) {
		return 0, fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	if sys := binary.BigEndian.Uint64(b[9:]); sys != n.selfSysID() {
		return 0, fmt.Errorf("%w: made for another database", ErrInvalidToken)
	}
	return lsn.LSN(binary.BigEndian.Uint64(b[17:])), nil
}

// selfSysID is the system identifier of the node's own database, learned
// now (bounded) if the node has not reached it yet: a token is only checked
// against a known identity.
func (n *Node) selfSysID() uint64 {
	if id := n.self.id().SysID; id != 0 {
		return id
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n.self.check(ctx) {
		n.publish()
	}
	return n.self.id().SysID
}

// tokenKeys are the keys tokens are signed with (the first) and accepted
// under: one per secret, derived from it and the app's name, so neither a
// token of another app sharing a secret by accident nor anything else keyed
// from the secret verifies as one. Derived once.
func (n *Node) tokenKeys() [][]byte {
	n.tokenOnce.Do(func() {
		for _, secret := range append([][]byte{n.cfg.Secret}, n.cfg.PreviousSecrets...) {
			key, err := hkdf.Key(sha256.New, secret, nil, "flypg/token/v1\x00"+n.cfg.App, 32)
			if err != nil {
				panic("flypg: hkdf: " + err.Error()) // only for lengths over 255*32
			}
			n.tokenKeyring = append(n.tokenKeyring, key)
		}
	})
	return n.tokenKeyring
}

func tokenMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)[:tokenMACLen]
}
