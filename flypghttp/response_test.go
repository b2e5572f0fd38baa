package flypghttp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
	"github.com/flypg/flypg/lsn"
)

// TestTokenOnlyWhenWrote: a response carries a token exactly when its
// request's writes recorded an LSN — whatever the status, with or without
// NoAwait, by autocommit or a committed transaction — and not for reads, a
// rolled-back transaction, a request that brought a token but only read, or
// a skipped path. Skipped requests do not wait for a token either.
func TestTokenOnlyWhenWrote(t *testing.T) {
	r := startRegions(t, nil)
	db := r.lax.OpenDB()
	defer db.Close()
	insert := func(ctx context.Context) error { _, err := addNote(ctx, db, "w"); return err }
	inTx := func(commit bool) func(context.Context) error {
		return func(ctx context.Context) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO notes (body) VALUES ('tx')"); err != nil {
				_ = tx.Rollback()
				return err
			}
			if commit {
				return tx.Commit()
			}
			return tx.Rollback()
		}
	}
	routes := map[string]struct {
		do     func(ctx context.Context) error
		status int
	}{
		"/read": {func(ctx context.Context) error {
			return db.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(new(int))
		}, http.StatusOK},
		"/write":          {insert, http.StatusOK},
		"/write-then-500": {insert, http.StatusInternalServerError},
		"/write-noawait":  {func(ctx context.Context) error { return insert(flypg.NoAwait(ctx)) }, http.StatusAccepted},
		"/tx-commit":      {inTx(true), http.StatusOK},
		"/tx-rollback":    {inTx(false), http.StatusOK},
		"/static/write":   {insert, http.StatusOK},
	}
	mux := http.NewServeMux()
	for path, rt := range routes {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if err := rt.do(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			w.WriteHeader(rt.status)
		})
	}
	skip := flypghttp.WithSkip(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/static/") })
	s := httptest.NewServer(flypghttp.Middleware(r.lax, skip)(mux))
	defer s.Close()

	// A genuine token lax has replayed: honouring it costs one tracker wait.
	_, resp := write(t, http.DefaultClient, serve(t, r.lax), nil)
	tok := tokenOf(t, resp)
	require.NotEmpty(t, tok)

	for _, tc := range []struct {
		path, token string
		wantToken   bool
		wantWait    bool
	}{
		{"/read", "", false, false},
		{"/read", tok, false, true},
		{"/write", "", true, false},
		{"/write", tok, true, true},
		{"/write-then-500", "", true, false},
		{"/write-noawait", "", true, false},
		{"/tx-commit", "", true, false},
		{"/tx-rollback", "", false, false},
		{"/static/write", tok, false, false},
	} {
		t.Run(fmt.Sprintf("%s/token=%t", tc.path[1:], tc.token != ""), func(t *testing.T) {
			var h http.Header
			if tc.token != "" {
				h = tokenHeader(tc.token)
			}
			before := r.lax.Stats().Tracker.Waits
			resp, body := do(t, http.DefaultClient, "GET", s.URL+tc.path, h)
			require.Equal(t, routes[tc.path].status, resp.StatusCode, body)
			got := tokenOf(t, resp)
			assert.Equal(t, tc.wantToken, got != "", "response token")
			if got != "" {
				_, err := r.ams.ParseToken(got)
				assert.NoError(t, err, "another node honours it")
			}
			// Writes' own awaits count as tracker waits too; only reads tell.
			if !strings.Contains(tc.path, "write") && !strings.HasPrefix(tc.path, "/tx") {
				assert.Equal(t, tc.wantWait, r.lax.Stats().Tracker.Waits > before, "waited for the request's token")
			}
		})
	}
}

// TestHigherTokenKept: the primary region mints tokens for its own local
// writes, and a request that brings a higher token than its write reached
// gets that higher token back — a client's token never moves backwards.
func TestHigherTokenKept(t *testing.T) {
	r := startRegions(t, nil)
	syd := serve(t, r.syd)
	ctx := testCtx(t)
	pos, err := r.c.Primary.QueryString(ctx, "SELECT pg_current_wal_insert_lsn()::text")
	require.NoError(t, err)
	now, err := lsn.Parse(pos)
	require.NoError(t, err)
	high := now + 1<<30 // far past any write this test makes
	parse := func(resp *http.Response) lsn.LSN {
		tok := tokenOf(t, resp)
		require.NotEmpty(t, tok)
		l, err := r.syd.ParseToken(tok)
		require.NoError(t, err)
		return l
	}

	resp := writeExec(t, http.DefaultClient, syd, nil)
	own := parse(resp)
	assert.Greater(t, own, now, "a local write in the primary region is tracked")

	resp = writeExec(t, http.DefaultClient, syd, tokenHeader(r.syd.Token(high)))
	assert.Equal(t, high, parse(resp), "the higher token the request brought")

	resp = writeExec(t, http.DefaultClient, syd, tokenHeader(r.syd.Token(own)))
	assert.Greater(t, parse(resp), own, "the request's write, higher than its token")

	// Two tokens, by header and cookie: the higher wins.
	h := tokenHeader(r.syd.Token(1))
	h.Set("Cookie", flypghttp.DefaultCookieName+"="+r.syd.Token(high+1))
	resp = writeExec(t, http.DefaultClient, syd, h)
	assert.Equal(t, high+1, parse(resp))
}

// TestDevModePassThrough: in dev mode the middleware is the handler itself,
// and nothing gets a token.
func TestDevModePassThrough(t *testing.T) {
	c := flypghttp.TestCluster(t)
	notesTable(t, c)
	dev, err := flypg.Start(testCtx(t), flypg.Config{DSN: c.Primary.DSN(), Logger: quiet()})
	require.NoError(t, err)
	defer dev.Close()
	db := dev.OpenDB()
	defer db.Close()
	app := notes(db)
	h := flypghttp.Middleware(dev)(app)
	assert.Same(t, app, h, "the handler itself")

	s := httptest.NewServer(h)
	defer s.Close()
	_, resp := write(t, http.DefaultClient, s, nil)
	assert.Empty(t, tokenOf(t, resp))
}

// TestMiddlewareRefusesMistakes: a nil node or handler, and options that
// can never work, fail at start-up, not on a request.
func TestMiddlewareRefusesMistakes(t *testing.T) {
	dev, err := flypg.Start(testCtx(t), flypg.Config{DSN: "postgres://127.0.0.1:1/none", Logger: quiet()})
	require.NoError(t, err)
	defer dev.Close()
	node := startNode(t, "syd", flypghttp.TestCluster(t).Primary.DSN(), nil, nil)
	assert.PanicsWithValue(t, "flypghttp: Middleware needs the app's *flypg.Node, got nil", func() { flypghttp.Middleware(nil) })
	assert.PanicsWithValue(t, "flypghttp: Middleware applied to a nil http.Handler", func() { flypghttp.Middleware(node)(nil) })
	for name, opts := range map[string][]flypghttp.Option{
		"cookie name":   {flypghttp.WithCookieName("flypg token")},
		"header name":   {flypghttp.WithHeaderName("Flypg Token")},
		"domain":        {flypghttp.WithDomain("exa mple.com")},
		"path":          {flypghttp.WithPath("/a;b")},
		"same-site":     {flypghttp.WithSameSite(http.SameSite(42))},
		"both disabled": {flypghttp.WithCookieName(""), flypghttp.WithHeaderName("")},
	} {
		t.Run(name, func(t *testing.T) {
			// Refused in dev mode too: the mistake would surface in production.
			assert.Panics(t, func() { flypghttp.Middleware(dev, opts...) }, "dev mode")
			assert.Panics(t, func() { flypghttp.Middleware(node, opts...) })
		})
	}
	assert.NotPanics(t, func() {
		flypghttp.Middleware(node, flypghttp.WithCookieName("tok"), flypghttp.WithHeaderName("x-causal-token"),
			flypghttp.WithDomain("example.com"), flypghttp.WithPath("/app"), flypghttp.WithSameSite(http.SameSiteStrictMode))
	})
}
