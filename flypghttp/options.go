package flypghttp

import (
	"fmt"
	"net/http"
	"strings"
)

// Defaults of the options.
const (
	// DefaultCookieName is the cookie that carries the token for browsers.
	DefaultCookieName = "flypg-token"
	// DefaultHeaderName is the request and response header that carries the
	// token for API clients.
	DefaultHeaderName = "Flypg-Token"
)

// An Option changes how Middleware carries the token. Options are applied in
// order; Middleware panics on an option whose value can never work (an
// invalid cookie or header name, path or domain), as http.ServeMux panics on
// an invalid pattern: it is a mistake in the program, found at start-up.
type Option func(*options)

type options struct {
	cookie, header string
	path, domain   string
	sameSite       http.SameSite
	secure         *bool // nil: decided per request
	skip           func(*http.Request) bool
}

func defaults() options {
	return options{cookie: DefaultCookieName, header: DefaultHeaderName, path: "/", sameSite: http.SameSiteLaxMode}
}

// WithCookieName names the token's cookie. Default DefaultCookieName
// ("flypg-token"). An empty name turns the cookie off: the token then
// travels only in the header, for apps that serve APIs alone.
func WithCookieName(name string) Option { return func(o *options) { o.cookie = name } }

// WithHeaderName names the token's request and response header. Default
// DefaultHeaderName ("Flypg-Token"). An empty name turns the header off:
// the token then travels only in the cookie.
func WithHeaderName(name string) Option {
	return func(o *options) { o.header = http.CanonicalHeaderKey(name) }
}

// WithSecure sets or clears the cookie's Secure attribute for every
// response. By default it is set when the request arrived over TLS or a
// proxy in front says it did (X-Forwarded-Proto: https — Fly.io's proxy
// terminates TLS and says so), so that local plain-HTTP development still
// gets its cookie back. A client that lies about the protocol only gets a
// cookie it will not send back over plain HTTP.
func WithSecure(secure bool) Option { return func(o *options) { o.secure = &secure } }

// WithDomain sets the cookie's Domain attribute, to share the token across
// subdomains (app.example.com and api.example.com). Default none: the cookie
// goes back only to the host that set it.
func WithDomain(domain string) Option { return func(o *options) { o.domain = domain } }

// WithPath sets the cookie's Path attribute. Default "/": the next request
// that must see the write may be for any page.
func WithPath(path string) Option { return func(o *options) { o.path = path } }

// WithSameSite sets the cookie's SameSite attribute. Default
// http.SameSiteLaxMode: a top-level navigation from another site (a link in
// an email) still carries the token, a cross-site subrequest does not.
// http.SameSiteNoneMode implies Secure, whatever WithSecure says: browsers
// drop SameSite=None cookies that are not Secure.
func WithSameSite(mode http.SameSite) Option { return func(o *options) { o.sameSite = mode } }

// WithSkip exempts the requests for which skip returns true — static files,
// health checks — from the middleware: they neither wait for a token nor
// get one. Default: no request is skipped. skip runs on every request, so it
// should be cheap.
func WithSkip(skip func(r *http.Request) bool) Option { return func(o *options) { o.skip = skip } }

// validate reports an option that can never work, in words a developer can
// act on.
func (o *options) validate() error {
	if o.cookie == "" && o.header == "" {
		return fmt.Errorf("flypghttp: both the cookie and the header are turned off: the token would have no way back")
	}
	if o.cookie != "" {
		c := http.Cookie{Name: o.cookie, Value: "x", Path: o.path, Domain: o.domain}
		if err := c.Valid(); err != nil {
			return fmt.Errorf("flypghttp: cookie options: %w", err)
		}
	}
	if o.header != "" && !validHeaderName(o.header) {
		return fmt.Errorf("flypghttp: invalid header name %q", o.header)
	}
	switch o.sameSite {
	case http.SameSiteDefaultMode, http.SameSiteLaxMode, http.SameSiteStrictMode, http.SameSiteNoneMode:
	default:
		return fmt.Errorf("flypghttp: unknown SameSite mode %d", o.sameSite)
	}
	return nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return name != ""
}
