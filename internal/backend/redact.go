package backend

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Redact returns s with the password of dsn — and any password that looks
// like one in a URL or key=value connection string — replaced by "xxxxx".
// Errors of url.Parse, pgx.ParseConfig and pgconn quote connection strings,
// and apps log errors: secrets must never reach them.
func Redact(s, dsn string) string {
	// A password shorter than that would be found in ordinary words, and
	// masking it there spells it out ("failxxxxxd" for "e").
	if pw := password(dsn); len(pw) >= 4 {
		s = strings.ReplaceAll(s, pw, "xxxxx")
		if esc := url.QueryEscape(pw); esc != pw {
			s = strings.ReplaceAll(s, esc, "xxxxx")
		}
		if esc := url.PathEscape(pw); esc != pw {
			s = strings.ReplaceAll(s, esc, "xxxxx")
		}
	}
	s = urlPassword.ReplaceAllString(s, "${1}xxxxx@")
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}

var (
	urlPassword = regexp.MustCompile(`((?:postgres|postgresql)://[^:/@\s]*:)[^"'\n]*@`)
	kvPassword  = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)
)

// password extracts the password of a URL or key=value connection string,
// without failing on malformed input.
func password(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
	}
	if m := urlPassword.FindStringIndex(dsn); m != nil {
		// url.Parse failed: take what lies between the user's colon and '@'.
		seg := dsn[m[0]:m[1]]
		if i := strings.LastIndex(seg[:len(seg)-1], ":"); i >= 0 {
			return seg[i+1 : len(seg)-1]
		}
	}
	if m := kvPassword.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[2], "'")
	}
	return ""
}

// ParseError is the error for a connection string raw that did not parse
// (err, from url.Parse or a driver's parser), saying what is wrong without
// quoting any of it. Parsers quote the string, or the piece of it they
// stumbled on — in a mistyped password, a piece of the password — and no
// redaction can tell where a malformed string's password ends. So the
// message is a fixed text for the kind of mistake the parser reports,
// and the parser's own words are kept only when the string holds no
// password at all. what names the string ("the database URL"); for a
// keyword/value string it is said as "connection string".
func ParseError(what, raw string, err error) error {
	if !isURL(raw) && strings.HasSuffix(what, " URL") {
		what = strings.TrimSuffix(what, " URL") + " connection string"
	}
	msg := err.Error()
	for _, k := range parseKinds {
		if strings.Contains(msg, k.match) {
			return fmt.Errorf("flypg: %s does not parse: %s", what, k.say)
		}
	}
	if !holdsPassword(raw) {
		return fmt.Errorf("flypg: %s does not parse: %s", what, scrub(msg, raw))
	}
	return fmt.Errorf("flypg: %s does not parse (the parser's message is withheld: it may quote the password): "+
		"in a URL, percent-encode special characters in the user name and password (# is %%23, / is %%2F, ? is %%3F, %% is %%25, @ is %%40); "+
		"in keyword/value settings, quote values holding spaces or quotes", what)
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// holdsPassword: raw may hold a password (a URL's user information, any
// password setting), so a parser's message about it may quote one.
func holdsPassword(raw string) bool {
	if strings.Contains(strings.ToLower(raw), "password") {
		return true
	}
	if i := strings.Index(raw, "://"); i >= 0 && strings.Contains(raw[i:], "@") {
		return true
	}
	return false
}

// parseKinds map the messages of pgx's, lib/pq's and net/url's parsers to
// what to say instead: none quotes anything from the string.
var parseKinds = []struct{ match, say string }{
	{"invalid port", "its port is not a number from 1 to 65535"},
	{"missing \"=\"", "a setting has no '=' after its name: quote values holding spaces"},
	{"missing key/value separator", "a query parameter has no '=': percent-encode '&' and '=' inside values (& is %26, = is %3D)"},
	{"extra key/value separator", "a query parameter has a second '=': percent-encode '=' inside values (= is %3D)"},
	{"unterminated quoted string", "a quoted value has no closing quote"},
	{"invalid percent-encoded token", "a '%' is not followed by two hex digits: percent-encode '%' as %25"},
	{"invalid URL escape", "a '%' is not followed by two hex digits: percent-encode '%' as %25"},
	{"unexpected spaces found", "it contains a space: percent-encode it as %20"},
	{"forbidden NUL", "it contains a NUL byte"},
	{"%00", "it contains a percent-encoded NUL byte (%00)"},
	{"invalid character", "it contains a character a URL may not hold there: percent-encode it"},
	{"invalid control character", "it contains a control character: percent-encode it"},
	{"missing ']'", "an IPv6 host address has no closing ']'"},
	{"looking for matching \"]\"", "an IPv6 host address has no closing ']'"},
	{"IPv6 host address may not be empty", "an IPv6 host address is empty"},
	{"first path segment in URL cannot contain colon", "it does not start with postgres://"},
	{"invalid keyword/value", "it is neither a postgres:// URL nor keyword=value settings"},
	{"failed to read service", "its service file could not be read"},
	{"failed to configure TLS", "its TLS settings (sslmode, sslrootcert, sslcert, sslkey) could not be used"},
	{"sslmode is invalid", "its sslmode is not one of disable, allow, prefer, require, verify-ca, verify-full"},
	{"connect_timeout", "its connect_timeout is not a number of seconds"},
	{"target_session_attrs", "its target_session_attrs is not a known value"},
}

// scrub is a parser's message about raw (one holding no password) made
// tidier: the copy of the string parsers put in front ("cannot parse
// `…`:") is dropped, its owner has it.
func scrub(msg, raw string) string {
	if strings.HasPrefix(msg, "cannot parse `") {
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		}
	}
	return Redact(msg, raw)
}
