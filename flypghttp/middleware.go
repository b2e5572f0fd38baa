package flypghttp

import (
	"net/http"
	"strings"
	"time"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/lsn"
)

const (
	// maxTokens bounds the candidate tokens a request may make the
	// middleware check: each costs an HMAC per accepted secret, and a
	// client must not buy much server CPU with one request's headers.
	maxTokens = 8
	// maxTokenLen drops anything far longer than a token before decoding.
	maxTokenLen = 256
)

// Middleware returns net/http middleware that carries read-your-writes
// across requests with n's causal tokens.
//
// For each request it reads the token from the cookie DefaultCookieName or
// the header DefaultHeaderName (the highest valid one, where there are
// several), and serves the request under flypg.AfterLSN of its LSN, so that
// the request's statements first wait until the local database has replayed
// it — or, for a read that cannot wait long enough, run on the primary. A
// token that is malformed, forged, foreign (another cluster, app or
// database) or expired is ignored as if absent, without waiting.
//
// It tracks the request's writes (flypg.Track) and, if they recorded an LSN,
// sets a token for it — or for the request's own token, if that one is
// higher — on the response before the headers go out: a cookie (HttpOnly,
// SameSite=Lax, Path=/, Max-Age matching the token's validity,
// flypg.DefaultTokenTTL; Secure over TLS) and the response header for API
// clients, which send it back in the request header. A request that wrote
// nothing gets no token, and keeps the one it has.
//
// In dev mode (a node whose Token is always "") it returns each handler
// unchanged. Middleware panics if n is nil or an option is invalid.
func Middleware(n *flypg.Node, opts ...Option) func(http.Handler) http.Handler {
	if n == nil {
		panic("flypghttp: Middleware needs the app's *flypg.Node, got nil")
	}
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		panic(err.Error())
	}
	if n.Token(1) == "" {
		// Dev mode: one database, nothing to wait for, no tokens to mint.
		return func(next http.Handler) http.Handler { return next }
	}
	m := &middleware{node: n, opts: o}
	m.cookie = http.Cookie{
		Name:     o.cookie,
		Path:     o.path,
		Domain:   o.domain,
		MaxAge:   int(flypg.DefaultTokenTTL / time.Second),
		HttpOnly: true, // scripts have no use for it; XSS must not read it
		SameSite: o.sameSite,
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("flypghttp: Middleware applied to a nil http.Handler")
		}
		return &handler{m: m, next: next}
	}
}

type middleware struct {
	node   *flypg.Node
	opts   options
	cookie http.Cookie // template: Value and Secure are per response
}

type handler struct {
	m    *middleware
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.m
	if m.opts.skip != nil && m.opts.skip(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	in := m.incoming(r)
	ctx, t := flypg.Track(flypg.AfterLSN(r.Context(), in))
	var ww *writer
	ww, out := wrap(w, func() { m.announce(ww.Header(), r, in, t) })
	h.next.ServeHTTP(out, r.WithContext(ctx))
	// A handler that wrote nothing: net/http sends the headers after it
	// returns, so there is still time.
	ww.headersOut()
}

// incoming returns the highest LSN among the request's valid tokens, 0 if
// it has none. Invalid ones are ignored: they must never make a request
// wait, and the client's next write replaces them.
func (m *middleware) incoming(r *http.Request) lsn.LSN {
	var best lsn.LSN
	tried := 0
	try := func(tok string) {
		tok = strings.TrimSpace(tok)
		if tok == "" || len(tok) > maxTokenLen || tried >= maxTokens {
			return
		}
		tried++
		if l, err := m.node.ParseToken(tok); err == nil && l > best {
			best = l
		}
	}
	if m.opts.header != "" {
		for _, v := range r.Header.Values(m.opts.header) {
			// Proxies may join repeated headers with commas; tokens have none.
			for tok := range strings.SplitSeq(v, ",") {
				try(tok)
			}
		}
	}
	if m.opts.cookie != "" {
		for _, c := range r.CookiesNamed(m.opts.cookie) {
			try(c.Value)
		}
	}
	return best
}

// announce puts the token for the request's writes into the response
// header map, if the request wrote.
func (m *middleware) announce(h http.Header, r *http.Request, in lsn.LSN, t *flypg.Tracked) {
	l := t.LSN()
	if l == 0 {
		return
	}
	tok := m.node.Token(max(l, in)) // never hand a client a lower token than it brought
	if tok == "" {
		return
	}
	if m.opts.cookie != "" {
		c := m.cookie
		c.Value = tok
		c.Secure = m.secure(r)
		if v := c.String(); v != "" {
			h.Add("Set-Cookie", v)
		}
	}
	if m.opts.header != "" {
		h.Set(m.opts.header, tok)
	}
}

func (m *middleware) secure(r *http.Request) bool {
	switch {
	case m.opts.sameSite == http.SameSiteNoneMode:
		return true // browsers drop SameSite=None cookies that are not Secure
	case m.opts.secure != nil:
		return *m.opts.secure
	case r.TLS != nil:
		return true
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}
