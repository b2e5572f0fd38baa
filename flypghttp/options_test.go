package flypghttp_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/flypghttp"
)

// TestCookieAttributes: the token's cookie and header as each option makes
// them, over plain HTTP, TLS, and behind a TLS-terminating proxy; and a
// renamed cookie or header is what the middleware reads back.
func TestCookieAttributes(t *testing.T) {
	r := startRegions(t, nil)
	maxAge := int(flypg.DefaultTokenTTL.Seconds())
	type want struct {
		cookie, header string // names; "" for none
		secure         bool
		sameSite       http.SameSite
		path, domain   string
	}
	def := want{cookie: "flypg-token", header: "Flypg-Token", sameSite: http.SameSiteLaxMode, path: "/"}
	with := func(f func(*want)) want { w := def; f(&w); return w }
	for _, tc := range []struct {
		name  string
		opts  []flypghttp.Option
		tls   bool
		proxy string // X-Forwarded-Proto
		want  want
	}{
		{"defaults over HTTP", nil, false, "", def},
		{"defaults over TLS", nil, true, "", with(func(w *want) { w.secure = true })},
		{"behind a TLS proxy", nil, false, "https", with(func(w *want) { w.secure = true })},
		{"behind a plain proxy", nil, false, "http", def},
		{"WithSecure(true)", []flypghttp.Option{flypghttp.WithSecure(true)}, false, "", with(func(w *want) { w.secure = true })},
		{"WithSecure(false)", []flypghttp.Option{flypghttp.WithSecure(false)}, true, "https", def},
		{"WithDomain", []flypghttp.Option{flypghttp.WithDomain("example.com")}, false, "", with(func(w *want) { w.domain = "example.com" })},
		{"WithPath", []flypghttp.Option{flypghttp.WithPath("/app")}, false, "", with(func(w *want) { w.path = "/app" })},
		{"WithSameSite(Strict)", []flypghttp.Option{flypghttp.WithSameSite(http.SameSiteStrictMode)}, false, "",
			with(func(w *want) { w.sameSite = http.SameSiteStrictMode })},
		{"WithSameSite(None) is Secure", []flypghttp.Option{flypghttp.WithSameSite(http.SameSiteNoneMode), flypghttp.WithSecure(false)}, false, "",
			with(func(w *want) { w.sameSite, w.secure = http.SameSiteNoneMode, true })},
		{"WithCookieName", []flypghttp.Option{flypghttp.WithCookieName("causal")}, false, "", with(func(w *want) { w.cookie = "causal" })},
		{"WithHeaderName", []flypghttp.Option{flypghttp.WithHeaderName("x-causal-token")}, false, "",
			with(func(w *want) { w.header = "X-Causal-Token" })},
		{"no cookie", []flypghttp.Option{flypghttp.WithCookieName("")}, false, "", with(func(w *want) { w.cookie = "" })},
		{"no header", []flypghttp.Option{flypghttp.WithHeaderName("")}, false, "", with(func(w *want) { w.header = "" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := r.syd.OpenDB()
			defer db.Close()
			h := flypghttp.Middleware(r.syd, tc.opts...)(notes(db))
			s := httptest.NewUnstartedServer(h)
			if tc.tls {
				s.StartTLS()
			} else {
				s.Start()
			}
			defer s.Close()
			var hdr http.Header
			if tc.proxy != "" {
				hdr = http.Header{"X-Forwarded-Proto": {tc.proxy}}
			}
			resp := writeExec(t, s.Client(), s, hdr)

			var tok string
			if tc.want.header != "" {
				tok = resp.Header.Get(tc.want.header)
				require.NotEmpty(t, tok, "header %s", tc.want.header)
			}
			if tc.want.header != "Flypg-Token" {
				assert.Empty(t, resp.Header.Get("Flypg-Token"), "the default header")
			}
			cookies := resp.Cookies()
			if tc.want.cookie == "" {
				assert.Empty(t, cookies, "no cookie")
			} else {
				require.Len(t, cookies, 1)
				c := cookies[0]
				assert.Equal(t, tc.want.cookie, c.Name)
				if tok != "" {
					assert.Equal(t, tok, c.Value, "the cookie carries the header's token")
				}
				tok = c.Value
				assert.True(t, c.HttpOnly, "HttpOnly")
				assert.Equal(t, tc.want.secure, c.Secure, "Secure")
				assert.Equal(t, tc.want.sameSite, c.SameSite, "SameSite")
				assert.Equal(t, tc.want.path, c.Path, "Path")
				assert.Equal(t, tc.want.domain, c.Domain, "Domain")
				assert.Equal(t, maxAge, c.MaxAge, "Max-Age is the token's validity")
			}
			l, err := r.syd.ParseToken(tok)
			require.NoError(t, err)

			// The token comes back the way it went out, under the option's
			// name: the next write keeps its (higher) LSN.
			higher := r.syd.Token(l + 1<<30)
			back := http.Header{}
			if tc.want.cookie != "" {
				back.Set("Cookie", tc.want.cookie+"="+higher)
			} else {
				back.Set(tc.want.header, higher)
			}
			resp = writeExec(t, s.Client(), s, back)
			got := resp.Header.Get(tc.want.header)
			if tc.want.header == "" {
				got = resp.Cookies()[0].Value
			}
			l2, err := r.syd.ParseToken(got)
			require.NoError(t, err)
			assert.Equal(t, l+1<<30, l2, "the token was read back")
		})
	}
}
