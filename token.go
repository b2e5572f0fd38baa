package flypg

import (
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
	tokenMAC     = 16            // truncated HMAC-SHA256: 128 bits is beyond forging
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
	var b [tokenBody + tokenMAC]byte
	b[0] = tokenVersion
	binary.BigEndian.PutUint64(b[1:], uint64(expiry.Unix()))
	binary.BigEndian.PutUint64(b[9:], n.self.id().SysID)
	binary.BigEndian.PutUint64(b[17:], uint64(l))
	copy(b[tokenBody:], n.tokenMAC(n.cfg.Secret, b[:tokenBody]))
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
	if err != nil || len(b) != tokenBody+tokenMAC || b[0] != tokenVersion {
		return 0, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	ok := false
	for _, s := range append([][]byte{n.cfg.Secret}, n.cfg.PreviousSecrets...) {
		if hmac.Equal(b[tokenBody:], n.tokenMAC(s, b[:tokenBody])) {
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
	if sys := binary.BigEndian.Uint64(b[9:]); sys != 0 && n.self.id().SysID != 0 && sys != n.self.id().SysID {
		return 0, fmt.Errorf("%w: made for another database", ErrInvalidToken)
	}
	return lsn.LSN(binary.BigEndian.Uint64(b[17:])), nil
}

// tokenMAC keys tokens from the secret and the app's name, so neither a
// token of another app sharing a secret by accident nor anything else keyed
// from the secret verifies as one.
func (n *Node) tokenMAC(secret, body []byte) []byte {
	key, err := hkdf.Key(sha256.New, secret, nil, "flypg/token/v1\x00"+n.cfg.App, 32)
	if err != nil {
		panic("flypg: hkdf: " + err.Error()) // only for lengths over 255*32
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)[:tokenMAC]
}
