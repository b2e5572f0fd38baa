package flypghttp_test

import (
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
)

// TestTokenAcrossRegions: a user writes through node lax, and their next
// request is served by node ams, whose standby applies commits 250 ms late.
// With the token — the cookie a browser sends back, or the header an API
// client copies — that request never reads stale data; without it, it does.
// One site on several nodes: the cookie jar sends lax's cookie to ams
// (cookies ignore the port), as a browser sends it to whichever node Fly's
// proxy picks.
func TestTokenAcrossRegions(t *testing.T) {
	r := startRegions(t, nil)
	lax, ams := serve(t, r.lax), serve(t, r.ams)
	delayReplay(t, r.c, r.c.Replicas[1], 250*time.Millisecond)

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}
	api, plain := &http.Client{}, &http.Client{}

	const iterations = 20
	stale := map[string]int{}
	before := r.ams.Stats()
	var headerTok string
	for i := range iterations {
		// A browser: the cookie goes back by itself.
		id, resp := write(t, browser, lax, nil)
		assert.NotEmpty(t, tokenOf(t, resp), "a write's response carries a token")
		ok, resp := visible(t, browser, ams, id, nil)
		if !ok {
			stale["cookie"]++
		}
		assert.Empty(t, tokenOf(t, resp), "a read's response carries none")

		// An API client: the header goes back because the client sends it.
		id, resp = write(t, api, lax, tokenHeader(headerTok))
		headerTok = tokenOf(t, resp)
		require.NotEmpty(t, headerTok, "iteration %d", i)
		if ok, _ := visible(t, api, ams, id, tokenHeader(headerTok)); !ok {
			stale["header"]++
		}

		// No token: ams serves what its standby has replayed.
		id, _ = write(t, plain, lax, nil)
		if ok, _ := visible(t, plain, ams, id, nil); !ok {
			stale["none"]++
		}
	}
	after := r.ams.Stats()
	t.Logf("stale reads in %d iterations: %v; ams tracker waits %d (polls %d)", iterations, stale,
		after.Tracker.Waits-before.Tracker.Waits, after.Tracker.Polls-before.Tracker.Polls)

	assert.Zero(t, stale["cookie"], "stale reads with the cookie")
	assert.Zero(t, stale["header"], "stale reads with the header")
	assert.Positive(t, stale["none"], "without a token ams must serve stale reads, or this test shows nothing")
	// The fresh reads were ams's own standby, after waiting — not the primary.
	assert.Equal(t, before.PrimaryReads, after.PrimaryReads, "reads sent to the primary")
	assert.GreaterOrEqual(t, after.Tracker.Waits-before.Tracker.Waits, uint64(2*iterations), "waits for a token")
	assert.Equal(t, before.Tracker.Timeouts, after.Tracker.Timeouts, "waits that timed out")
}

// TestTokenReplicaStuck: when ams's standby cannot replay the token's LSN
// within AwaitTimeout, the read runs on the primary rather than be stale.
func TestTokenReplicaStuck(t *testing.T) {
	r := startRegions(t, map[string]func(*flypg.Config){
		"ams": func(c *flypg.Config) { c.AwaitTimeout = 200 * time.Millisecond },
	})
	lax, ams := serve(t, r.lax), serve(t, r.ams)
	pauseReplay(t, r.c, r.c.Replicas[1])

	id, resp := write(t, http.DefaultClient, lax, nil)
	tok := tokenOf(t, resp)
	require.NotEmpty(t, tok)

	ok, _ := visible(t, http.DefaultClient, ams, id, nil)
	require.False(t, ok, "ams's standby is paused: without the token the note is not there")

	before := r.ams.Stats()
	ok, _ = visible(t, http.DefaultClient, ams, id, tokenHeader(tok))
	after := r.ams.Stats()
	assert.True(t, ok, "with the token the read is never stale")
	assert.Equal(t, before.PrimaryReads+1, after.PrimaryReads, "the read ran on the primary")
	assert.Equal(t, before.Tracker.Timeouts+1, after.Tracker.Timeouts, "after waiting AwaitTimeout")
}
