package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// The link runs over TLS 1.3 for confidentiality and integrity, with a
// certificate that each Transport makes for itself when it starts: a fresh
// Ed25519 key, self-signed. Nothing in it depends on the cluster secret, so
// a peer that connects learns nothing it could test a guess against (a key
// pair derived from the secret would be exactly such an oracle: derive the
// public key from a guess, compare). Peers do not verify certificates;
// instead the SPAKE2 exchange that follows is bound to the TLS session
// through its exported keying material, which a man in the middle holding
// two different TLS sessions cannot make agree.

// alpnLink names the protocol in TLS, so that a TLS client of another
// service fails the TLS handshake rather than ours.
const alpnLink = "flypg-link"

// newEphemeralCert makes the Transport's self-signed certificate.
func newEphemeralCert() (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "flypg link (ephemeral)"},
		NotBefore:    now.Add(-time.Hour),
		// Never verified (see above); long enough that no tool chokes on it.
		NotAfter:    now.Add(100 * 365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// linkTLS returns the server and client TLS configurations of the link.
// custom, if set (Config.TLS), replaces the ephemeral certificate and the
// absent verification; TLS 1.3 is required either way, because the channel
// binding relies on its exporter.
func linkTLS(custom *tls.Config) (server, client *tls.Config, err error) {
	if custom != nil {
		server, client = custom.Clone(), custom.Clone()
	} else {
		cert, err := newEphemeralCert()
		if err != nil {
			return nil, nil, fmt.Errorf("transport: link certificate: %w", err)
		}
		server = &tls.Config{Certificates: []tls.Certificate{cert}}
		// Verification would have nothing to check against; authentication
		// is the SPAKE2 exchange bound to this session (see above).
		client = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // see above
	}
	for _, c := range []*tls.Config{server, client} {
		c.MinVersion = tls.VersionTLS13
		c.NextProtos = []string{alpnLink}
	}
	return server, client, nil
}

// tlsBinding returns the keying material that binds the SPAKE2 exchange to
// the TLS session.
func tlsBinding(c *tls.Conn) ([]byte, error) {
	cs := c.ConnectionState()
	if cs.Version != tls.VersionTLS13 {
		return nil, errors.New("TLS 1.3 required")
	}
	return cs.ExportKeyingMaterial(exporterLabel, nil, 32)
}
