package backend

import (
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
