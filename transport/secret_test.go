package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateSecret(t *testing.T) {
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	r32 := random(32)
	for _, tc := range []struct {
		name   string
		secret []byte
		want   string // "" = accepted; else a fragment of the refusal
	}{
		{"32 random bytes", r32, ""},
		{"64 random bytes", random(64), ""},
		{"base64 of 32 random bytes (openssl rand -base64 32)", []byte(base64.StdEncoding.EncodeToString(r32)), ""},
		{"unpadded URL base64 of 32 bytes", []byte(base64.RawURLEncoding.EncodeToString(r32)), ""},
		{"hex of 32 random bytes", []byte(hex.EncodeToString(r32)), ""},
		{"upper-case hex", []byte(strings.ToUpper(hex.EncodeToString(r32))), ""},
		{"random printable password of 40 characters", []byte(`x7#Kq!9vR2$mLp@4Zt^8Wn&3Bc*6Yh(1Jd)5Fg`), ""},
		{"empty", nil, "no secret"},
		{"short text", []byte("hunter2"), "7 bytes"},
		{"31 random bytes", random(31), "31 bytes"},
		{"base64 of 24 bytes", []byte(base64.StdEncoding.EncodeToString(random(24))), "base64 text of 24 bytes"},
		{"hex of 16 bytes", []byte(hex.EncodeToString(random(16))), "hex text of 16 bytes"},
		{"passphrase", []byte("correct horse battery staple and more words"), "words"},
		{"capitalised passphrase", []byte("Correct-Horse-Battery-Staple-Mountain-River-9"), "words"},
		{"one byte repeated", bytes.Repeat([]byte{'%'}, 40), "distinct"},
		{"few distinct bytes", []byte(strings.Repeat("qwerty!", 6)), "distinct"},
		{"a run", append(random(30), 7, 7, 7, 7), "in a row"},
		{"a repeated pattern", bytes.Repeat(random(24), 2), "pattern"},
		{"base64 of a repeated pattern", []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("abcdefghijklmnopq"), 3))), "does not encode random bytes"},
		{"trailing newline", []byte(base64.StdEncoding.EncodeToString(r32) + "\n"), "white space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSecret(tc.secret)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrWeakSecret)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "openssl rand -base64 32", "the error says how to make a good one")
			if len(tc.secret) >= 4 {
				assert.NotContains(t, err.Error(), string(tc.secret), "the error never quotes the secret")
			}
		})
	}
}

// TestValidateSecretAcceptsGenerated: generated secrets are never refused
// (the checks' false-positive rate is negligible).
func TestValidateSecretAcceptsGenerated(t *testing.T) {
	for range 2000 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		require.NoError(t, ValidateSecret(b))
		require.NoError(t, ValidateSecret([]byte(base64.StdEncoding.EncodeToString(b))))
		require.NoError(t, ValidateSecret([]byte(hex.EncodeToString(b))))
	}
	// Long secrets too (`openssl rand -hex 512`): a step between two bytes
	// takes at most 256 values, so judging all of a long secret's steps
	// refused every random one past ~400 bytes.
	for _, n := range []int{64, 256, 400, 512, 1024, 4096} {
		for range 50 {
			b := make([]byte, n)
			_, _ = rand.Read(b)
			require.NoError(t, ValidateSecret(b), "%d random bytes", n)
			require.NoError(t, ValidateSecret([]byte(base64.StdEncoding.EncodeToString(b))), "%d random bytes, base64", n)
			require.NoError(t, ValidateSecret([]byte(hex.EncodeToString(b))), "%d random bytes, hex", n)
		}
	}
}

// capture is a slog handler that keeps every line.
type capture struct {
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
}

func newCapture() *capture { return &capture{mu: new(sync.Mutex), lines: new([]string)} }

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range c.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	c.mu.Lock()
	*c.lines = append(*c.lines, b.String())
	c.mu.Unlock()
	return nil
}
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{mu: c.mu, lines: c.lines, attrs: append(append([]slog.Attr(nil), c.attrs...), as...)}
}
func (c *capture) WithGroup(string) slog.Handler { return c }
func (c *capture) all() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(*c.lines, "\n")
}

// TestSecretsNeverLogged: every log line (memberlist's included) and every
// error of failing starts, failed handshakes and refused gossip is free of
// the secrets, in any encoding, and of the keys derived from them.
func TestSecretsNeverLogged(t *testing.T) {
	logs := newCapture()
	secret, other := newSecret(), newSecret()
	var errs []error
	cfg := func(name, region, s string) Config {
		c := testConfig(name, region)
		c.Secret = []byte(s)
		c.Logger = slog.New(logs)
		return c
	}
	// Failing starts.
	for _, s := range []string{"hunter2", secret + "\n", "correct horse battery staple"} {
		_, err := Start(context.Background(), cfg("x", "iad", s), whoAmI("x", "iad"))
		require.Error(t, err)
		errs = append(errs, err)
	}
	// Gossip and link between nodes holding different secrets.
	a := startNode(t, cfg("iad-1", "iad", secret), nil)
	b := startNode(t, cfg("lhr-1", "lhr", other), nil)
	_, err := b.ml.Join([]string{a.GossipAddr()})
	errs = append(errs, err)
	_, err = b.callMember(ctxTimeout(t, waitFor), Member{Name: "iad-1", Meta: a.mem.localMeta(), Alive: true}, "x", nil)
	errs = append(errs, err)
	// A raw client with a guessed secret.
	_, err = rawAuth(tlsDial(t, a), other, "iad-1")
	errs = append(errs, err)
	time.Sleep(100 * time.Millisecond) // let the server log its side
	require.NoError(t, b.Close())
	require.NoError(t, a.Close())

	var text strings.Builder
	for _, err := range errs {
		require.Error(t, err)
		text.WriteString(err.Error() + "\n")
	}
	text.WriteString(logs.all())
	out := text.String()
	require.Contains(t, out, "authentication failed", "the failures were logged and returned")
	for _, s := range []string{secret, other, "hunter2", "correct horse"} {
		raw := []byte(s)
		for _, enc := range []string{s, hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw)} {
			assert.NotContains(t, out, enc)
		}
		if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
			assert.NotContains(t, out, hex.EncodeToString(dec))
			assert.NotContains(t, out, string(dec))
		}
		for _, purpose := range []string{"gossip"} {
			k := deriveKey(raw, defaultLabel, purpose)
			assert.NotContains(t, out, hex.EncodeToString(k))
			assert.NotContains(t, out, base64.StdEncoding.EncodeToString(k))
		}
	}
}
