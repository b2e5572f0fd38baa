package flypghttp_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
	"github.com/flypg/flypg/internal/pgcluster"
)

// TestInvalidTokensIgnored: a token that is malformed, forged, made by
// another cluster, another app or for another database, or expired is
// ignored as if absent — by cookie and by header alike: the request does
// not wait for it (no tracker wait), does not go to the primary for it,
// reads ams's lagging standby as a request without a token would, and gets
// no token back. The genuine token, sent the same way, does all of that:
// the assertions would catch a token that is honoured.
func TestInvalidTokensIgnored(t *testing.T) {
	r := startRegions(t, map[string]func(*flypg.Config){
		"ams": func(c *flypg.Config) { c.AwaitTimeout = 200 * time.Millisecond },
	})
	lax, ams := serve(t, r.lax), serve(t, r.ams)
	pauseReplay(t, r.c, r.c.Replicas[1])

	id, resp := write(t, http.DefaultClient, lax, nil)
	genuine := tokenOf(t, resp)
	l, err := r.ams.ParseToken(genuine)
	require.NoError(t, err, "ams honours lax's token")

	// Tokens for the same LSN, made elsewhere.
	foreign := func(mod func(*flypg.Config)) string {
		n := startNode(t, "syd", r.c.Primary.DSN(), nil, mod)
		db := n.OpenDB()
		defer db.Close()
		require.NoError(t, db.PingContext(testCtx(t)), "the node learns its database's identity")
		tok := n.Token(l)
		require.NotEmpty(t, tok)
		return tok
	}
	otherCluster := foreign(func(c *flypg.Config) { c.Secret, c.NodeName = otherSecret, "other-cluster" })
	otherApp := foreign(func(c *flypg.Config) { c.App, c.NodeName = "another-app", "other-app" })
	otherDB := pgcluster.ForTest(t, pgcluster.Options{Replicas: -1})
	otherDatabase := foreign(func(c *flypg.Config) { c.DSN, c.NodeName = otherDB.Primary.DSN(), "other-database" })
	// lax's own token, made in a bubble whose clock reads 2000-01-01: it
	// expired long ago.
	var expired string
	synctest.Test(t, func(t *testing.T) { expired = r.lax.Token(l) })
	_, err = r.ams.ParseToken(expired)
	require.ErrorIs(t, err, flypg.ErrInvalidToken)
	require.Contains(t, err.Error(), "expired", "a genuine token, refused for its age alone")

	raw, err := base64.RawURLEncoding.DecodeString(genuine)
	require.NoError(t, err)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}

	cases := []struct {
		name, token string
		honoured    bool
	}{
		{"genuine", genuine, true},
		{"forged MAC", flip(len(raw) - 1), false},
		{"forged LSN", flip(len(raw) - 17), false},
		{"forged expiry", flip(8), false},
		{"other cluster's secret", otherCluster, false},
		{"other app", otherApp, false},
		{"other database", otherDatabase, false},
		{"expired", expired, false},
		{"truncated", genuine[:len(genuine)-4], false},
		{"one char more", genuine + "A", false},
		{"not base64", strings.Repeat("!", len(genuine)), false},
		{"padded", base64.URLEncoding.EncodeToString(raw), false},
		{"garbage", "hello", false},
		{"huge", strings.Repeat("A", 64<<10), false},
	}
	for _, tc := range cases {
		for _, by := range []string{"cookie", "header"} {
			t.Run(tc.name+"/"+by, func(t *testing.T) {
				if !tc.honoured {
					_, err := r.ams.ParseToken(tc.token)
					require.ErrorIs(t, err, flypg.ErrInvalidToken)
				}
				h := tokenHeader(tc.token)
				if by == "cookie" {
					h = http.Header{"Cookie": {flypghttp.DefaultCookieName + "=" + tc.token}}
				}
				before := r.ams.Stats()
				ok, resp := visible(t, http.DefaultClient, ams, id, h)
				after := r.ams.Stats()
				assert.Equal(t, tc.honoured, ok, "the note is visible only if the token was honoured")
				assert.Equal(t, tc.honoured, after.Tracker.Waits > before.Tracker.Waits, "waited for the token")
				assert.Equal(t, tc.honoured, after.PrimaryReads > before.PrimaryReads, "read on the primary")
				assert.Equal(t, before.Awaits, after.Awaits, "write awaits")
				assert.Greater(t, after.Local+after.PrimaryReads, before.Local+before.PrimaryReads, "the read ran")
				assert.Empty(t, tokenOf(t, resp), "a read gets no token")
			})
		}
	}
}
