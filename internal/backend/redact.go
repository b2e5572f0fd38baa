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
		return fmt.Errorf("flypg: %s does not parse: %s", what, Redact(err.Error(), raw))
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return fmt.Errorf("flypg: %s contains a space, control or non-ASCII character: percent-encode it", what)
	}
	if at := strings.LastIndex(raw, "@"); at > i {
		safe := raw[:i+3] + "user:xxxxx" + raw[at:]
		if _, serr := url.Parse(safe); serr != nil {
			return fmt.Errorf("flypg: %s does not parse: %s", what, Redact(serr.Error(), safe))
		}
		return fmt.Errorf("flypg: %s does not parse: percent-encode special characters in its user name and password (# is %%23, / is %%2F, ? is %%3F, %% is %%25, @ is %%40)", what)
	}
	return fmt.Errorf("flypg: %s does not parse: %s", what, Redact(err.Error(), raw))
}
