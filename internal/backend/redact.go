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
	if pw := password(dsn); pw != "" {
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
// (err, from url.Parse or the driver's parser), saying what is wrong
// without quoting its password. Parsers quote the URL, and a password
// holding '#', '?' or '/' cuts it where no redaction can find the
// password — so when the URL itself does not parse, the message comes from
// parsing it with its user info replaced, or names the rule it breaks.
func ParseError(what, raw string, err error) error {
	i := strings.Index(raw, "://")
	if _, uerr := url.Parse(raw); i < 0 || uerr == nil {
		return fmt.Errorf("flypg: %s does not parse: %s", what, scrub(err.Error(), raw))
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return fmt.Errorf("flypg: %s contains a space, control or non-ASCII character: percent-encode it", what)
	}
	if at := strings.LastIndex(raw, "@"); at > i {
		safe := raw[:i+3] + "user:xxxxx" + raw[at:]
		if _, serr := url.Parse(safe); serr != nil {
			return fmt.Errorf("flypg: %s does not parse: %s", what, scrub(serr.Error(), safe))
		}
		return fmt.Errorf("flypg: %s does not parse: percent-encode special characters in its user name and password (# is %%23, / is %%2F, ? is %%3F, %% is %%25, @ is %%40)", what)
	}
	return fmt.Errorf("flypg: %s does not parse: %s", what, scrub(err.Error(), raw))
}

// scrub is a parser's message about raw made safe to show: the copy of
// the connection string parsers put in front ("cannot parse `…`:") is
// dropped — its owner has it, and redacting a malformed one is guesswork
// — and every quoted piece of raw the message names is masked unless it is
// a connection setting's name or punctuation, since a parser that
// stumbles in a mistyped password quotes the piece of it it stumbled on
// (`missing "=" after "horse"`).
func scrub(msg, raw string) string {
	if strings.HasPrefix(msg, "cannot parse `") {
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		}
	}
	msg = quoted.ReplaceAllStringFunc(msg, func(q string) string {
		inner := q[1 : len(q)-1]
		if inner == "" || safeWords[inner] || !strings.Contains(raw, inner) && !strings.Contains(raw, url.PathEscape(inner)) {
			return q
		}
		if strings.Trim(inner, "=:/@?#&[]") == "" {
			return q
		}
		return `"…"`
	})
	return Redact(msg, raw)
}

var quoted = regexp.MustCompile(`"[^"]*"|'[^']*'|` + "`[^`]*`")

// safeWords are connection setting names a parser's message may quote.
var safeWords = map[string]bool{
	"host": true, "port": true, "dbname": true, "database": true, "user": true, "password": true,
	"sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true, "sslpassword": true,
	"sslsni": true, "sslnegotiation": true, "sslcertmode": true, "connect_timeout": true,
	"application_name": true, "target_session_attrs": true, "service": true, "servicefile": true,
	"options": true, "postgres": true, "postgresql": true,
}
