package flypg

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/flypg/flypg/internal/backend"
)

// This file reads and rewrites connection strings the way pgx reads them
// (pgconn.ParseConfig, which follows libpq), so that rewriting the host, the
// port or the database changes nothing else pgx would read. Strings that
// pgx and lib/pq (or net/url, which lib/pq uses for URLs) would read
// differently are refused: which server, user and database such a string
// names depends on who reads it.

// isURL tells a URL from a keyword/value connection string exactly as pgx
// does: by a case-sensitive scheme prefix. Any other test ("contains ://",
// a case-folded scheme) reads some strings in the other form than pgx.
func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// otherScheme reports a string that starts like a URL but not one pgx
// reads as a URL ("mysql://", "POSTGRES://"), which pgx would misread as
// keyword/value settings.
func otherScheme(s string) (string, bool) {
	i := strings.Index(s, "://")
	if i <= 0 || isURL(s) || strings.ContainsAny(s[:i], "="+kvSpace) {
		return "", false
	}
	scheme := s[:i]
	if strings.IndexFunc(scheme, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')
	}) >= 0 {
		scheme = "?" // not a scheme: perhaps a mistyped user:password
	}
	return scheme, true
}

// knownKeys are the connection settings an error may name; any other key
// is not quoted, since in a malformed string it may be part of a password.
var knownKeys = map[string]bool{
	"host": true, "port": true, "database": true, "user": true, "password": true, "sslmode": true,
	"sslrootcert": true, "sslcert": true, "sslkey": true, "sslpassword": true, "sslsni": true,
	"sslnegotiation": true, "sslcertmode": true, "connect_timeout": true, "application_name": true,
	"target_session_attrs": true, "service": true, "servicefile": true, "hostaddr": true,
	"options": true, "ssl": true, "search_path": true, "client_encoding": true,
}

func keyName(k string) string {
	if knownKeys[k] {
		return k
	}
	return "a setting"
}

// refusedKeys override the host in lib/pq (a service file's settings win
// over the string's there; hostaddr is dialled instead of host) or mean
// something else to it (ssl=true is pgx's alias for sslmode=require).
var refusedKeys = map[string]string{
	"service":     "a service file can override the host: name the host in the string itself",
	"servicefile": "a service file can override the host: name the host in the string itself",
	"hostaddr":    "lib/pq dials hostaddr instead of the host: name the host only",
	"ssl":         "lib/pq does not read ssl=: write sslmode=require",
}

// urlParts is a postgres:// URL cut where pgx cuts it (pgconn's
// parseURLSettings, which follows libpq's URI parser): the scheme, the
// user information up to the first '@' before any '/', the host list
// (netloc), and the rest (path and query) verbatim; host and port are the
// first host's. Rewriting a URL by splicing these parts, rather than
// re-serialising what net/url read, changes exactly the part meant.
type urlParts struct {
	scheme, userinfo, netloc, rest string

	hosts      []string
	host, port string
	bracketed  bool
	hasPort    bool
}

func (p urlParts) String() string {
	return p.scheme + p.userinfo + p.netloc + p.rest
}

// setHost replaces the host list by one host and port.
func (p *urlParts) setHost(host, port string, hasPort bool) {
	var b strings.Builder
	if p.bracketed || strings.Contains(host, ":") {
		b.WriteString("[" + host + "]")
	} else {
		b.WriteString(host)
	}
	if hasPort {
		b.WriteString(":" + port)
	}
	p.netloc, p.hosts, p.host, p.port, p.hasPort = b.String(), []string{host}, host, port, hasPort
}

// query is the URL's query parameters, keys decoded as pgx decodes them
// (percent-decoded, spaces trimmed, "dbname" as "database"), raw pairs
// kept for splicing.
func (p urlParts) query() (keys []string, pairs []string) {
	_, q, ok := strings.Cut(p.rest, "?")
	if !ok || q == "" {
		return nil, nil
	}
	pairs = strings.Split(q, "&")
	for _, pair := range pairs {
		k, _, _ := strings.Cut(pair, "=")
		dk, err := url.PathUnescape(strings.Trim(k, " "))
		if err != nil {
			dk = k
		}
		keys = append(keys, canonicalKey(dk))
	}
	return keys, pairs
}

// queryKey is the first of keys the URL's query string sets, or "".
func (p urlParts) queryKey(want ...string) string {
	keys, _ := p.query()
	for _, k := range keys {
		for _, w := range want {
			if k == w {
				return w
			}
		}
	}
	return ""
}

// withDatabase is the URL naming database name: in the path, and in a
// dbname/database query parameter if one overrides the path.
func (p urlParts) withDatabase(name string) string {
	keys, pairs := p.query()
	p.rest = "/" + uriEscape(name)
	if pairs != nil {
		for i, k := range keys {
			if k == "database" {
				raw, _, _ := strings.Cut(pairs[i], "=")
				pairs[i] = raw + "=" + uriEscape(name)
			}
		}
		p.rest += "?" + strings.Join(pairs, "&")
	}
	return p.String()
}

func splitURL(s string) (urlParts, error) {
	var p urlParts
	p.scheme = "postgres://"
	if strings.HasPrefix(s, "postgresql://") {
		p.scheme = "postgresql://"
	}
	r := s[len(p.scheme):]
	if i := strings.IndexAny(r, "@/"); i >= 0 && r[i] == '@' {
		p.userinfo, r = r[:i+1], r[i+1:]
	}
	start := r
	for {
		var host, port string
		var bracketed, hasPort bool
		if strings.HasPrefix(r, "[") {
			end := strings.IndexByte(r, ']')
			if end < 0 {
				return p, errors.New(`flypg: the database URL has no "]" after its IPv6 host address`)
			}
			host, bracketed, r = r[1:end], true, r[end+1:]
		} else {
			i := strings.IndexAny(r, ":/?,")
			if i < 0 {
				i = len(r)
			}
			host, r = r[:i], r[i:]
		}
		if strings.HasPrefix(r, ":") {
			r = r[1:]
			i := strings.IndexAny(r, "/?,")
			if i < 0 {
				i = len(r)
			}
			port, hasPort, r = r[:i], true, r[i:]
		}
		if len(p.hosts) == 0 {
			p.host, p.port, p.bracketed, p.hasPort = host, port, bracketed, hasPort
		}
		p.hosts = append(p.hosts, host)
		if !strings.HasPrefix(r, ",") {
			break
		}
		r = r[1:]
	}
	p.netloc, p.rest = start[:len(start)-len(r)], r
	return p, nil
}

// checkURL splits a postgres:// URL that pgx has parsed, refusing one
// that pgx and net/url or lib/pq would read differently — nearly always a
// password with an unencoded special character.
func checkURL(s, what string) (urlParts, error) {
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 || !utf8.ValidString(s) {
		return urlParts{}, fmt.Errorf("flypg: %s contains a space or control character, or bytes that are not UTF-8: percent-encode it", what)
	}
	if strings.Contains(s, "#") {
		// A '#' ends a URL's path for net/url, not for pgx: most likely an
		// unencoded '#' in the password.
		return urlParts{}, fmt.Errorf("flypg: %s contains '#': percent-encode special characters in the user name and password (# is %%23)", what)
	}
	authority := s[strings.Index(s, "://")+3:]
	if i := strings.IndexAny(authority, "/?"); i >= 0 {
		authority = authority[:i]
	}
	if strings.Count(authority, "@") > 1 {
		return urlParts{}, fmt.Errorf("flypg: %s contains '@' in its user name or password: percent-encode it (@ is %%40)", what)
	}
	u, err := url.Parse(s)
	if err != nil {
		return urlParts{}, backend.ParseError(what, s, err)
	}
	if d, err := url.PathUnescape(s); err == nil && !utf8.ValidString(d) {
		// lib/pq replaces such bytes; pgx keeps them.
		return urlParts{}, fmt.Errorf("flypg: %s percent-encodes bytes that are not UTF-8", what)
	}
	p, err := splitURL(s)
	if err != nil {
		return urlParts{}, err
	}
	if strings.Contains(p.userinfo, "?") {
		return urlParts{}, fmt.Errorf("flypg: %s contains '?' in its user name or password: percent-encode it (? is %%3F)", what)
	}
	if len(p.hosts) > 1 {
		// lib/pq reads "a:5432,b:5433" as one host "a:5432".
		return urlParts{}, fmt.Errorf("flypg: %s names several hosts: a URL may name one (a keyword/value string several)", what)
	}
	if p.hasPort && p.port == "" {
		return urlParts{}, fmt.Errorf("flypg: %s has an empty port after ':': remove the ':' or name the port", what)
	}
	for _, h := range p.hosts {
		if h != "" && !validHost(h) {
			return urlParts{}, fmt.Errorf("flypg: %s has a host that is neither a DNS name nor an IP address (percent-encoded, or with an IPv6 zone): write the host plainly", what)
		}
	}
	if len(p.hosts) == 1 && (u.Hostname() != p.host || u.Port() != p.port) || (u.User == nil) != (p.userinfo == "") {
		return urlParts{}, fmt.Errorf("flypg: %s reads differently to different parsers: percent-encode special characters in the user name and password", what)
	}
	_, q, _ := strings.Cut(p.rest, "?")
	if strings.ContainsAny(q, "+;") {
		// net/url (and lib/pq) read '+' as a space and ';' as a
		// separator; pgx reads both as themselves.
		return urlParts{}, fmt.Errorf("flypg: %s has '+' or ';' in its query string: percent-encode them (+ is %%2B, ; is %%3B)", what)
	}
	keys, pairs := p.query()
	for i, k := range keys {
		// lib/pq writes a URL's query keys, decoded, into keyword/value
		// settings unquoted: "h%6Fst%3Devil x=1" would set its host.
		if !plainWord(k) {
			return urlParts{}, fmt.Errorf("flypg: %s has a query parameter whose name is not a plain word", what)
		}
		if _, v, _ := strings.Cut(pairs[i], "="); strings.Trim(v, " ") == "" {
			// pgx sets an empty value; lib/pq ignores it, and the
			// environment's (PGUSER, PGSSLMODE, …) or its default applies.
			return urlParts{}, fmt.Errorf("flypg: %s sets %s to nothing in its query string: remove it or give it a value", what, keyName(k))
		}
	}
	seen := map[string]bool{}
	user, hasPassword := "", false
	if p.userinfo != "" {
		var pw string
		user, pw, hasPassword = strings.Cut(strings.TrimSuffix(p.userinfo, "@"), ":")
		hasPassword = hasPassword && pw != ""
	}
	for _, k := range keys {
		switch {
		case seen[k]:
			return urlParts{}, fmt.Errorf("flypg: %s sets %s twice in its query string (pgx takes the last, lib/pq the first): set it once", what, keyName(k))
		case refusedKeys[k] != "":
			return urlParts{}, fmt.Errorf("flypg: %s sets %s: %s", what, k, refusedKeys[k])
		case k == "database" && strings.TrimPrefix(strings.SplitN(p.rest, "?", 2)[0], "/") != "",
			k == "user" && user != "", k == "password" && hasPassword:
			return urlParts{}, fmt.Errorf("flypg: %s sets %s both in the URL and in its query string (pgx takes the query's, lib/pq may not): set it once", what, k)
		}
		seen[k] = true
	}
	return p, nil
}

// validHost is a DNS name or an IP address: nothing a parser could read
// two ways, or percent-decode into something else.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// uriEscape percent-encodes all but RFC 3986's unreserved characters, a
// form pgx, libpq and net/url all decode alike.
func uriEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// kvSpace is the white space of a keyword/value connection string (C's
// isspace, as libpq and pgx read it).
const kvSpace = " \t\n\r\v\f"

// canonicalKey is pgx's one alias among connection string keywords.
func canonicalKey(k string) string {
	if k == "dbname" {
		return "database"
	}
	return k
}

// parseKeyValue splits "k1=v1 k2 = 'v 2'" into its settings in order,
// following pgx's parser (pgconn's parseKeywordValueSettings, after
// libpq's) rule for rule: a keyword runs to the next '=' and may not
// contain white space; an unquoted value ends at white space; a quoted one
// at the closing quote; a backslash escapes the next byte (a trailing one
// is dropped); an empty user is ignored. Beyond pgx, the string must be
// UTF-8 (lib/pq replaces other bytes). Values are written back quoted, so
// lib/pq, which also splits unquoted values at Unicode white space, reads
// the result as pgx does. Its errors never quote the string: a malformed
// one may cut a password anywhere.
func parseKeyValue(s string) ([][2]string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errors.New("forbidden NUL byte in connection string")
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("the string is not valid UTF-8 (lib/pq would replace the bytes that are not)")
	}
	var out [][2]string
	s = strings.TrimLeft(s, kvSpace)
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New("a setting has no '=': quote values that contain white space")
		}
		key := strings.Trim(s[:eq], kvSpace)
		if key == "" || strings.ContainsAny(key, kvSpace) {
			return nil, errors.New("a setting has no name, or white space in it: quote values that contain white space")
		}
		s = strings.TrimLeft(s[eq+1:], kvSpace)
		var raw string
		switch {
		case len(s) == 0:
		case s[0] != '\'':
			end := 0
			for ; end < len(s) && !strings.ContainsRune(kvSpace, rune(s[end])); end++ {
				if s[end] == '\\' {
					if end++; end == len(s) {
						break
					}
				}
			}
			raw, s = s[:end], strings.TrimLeft(s[end:], kvSpace)
		default:
			s = s[1:]
			end := 0
			for ; end < len(s) && s[end] != '\''; end++ {
				if s[end] == '\\' {
					end++
				}
			}
			if end >= len(s) {
				return nil, errors.New("a quoted value has no closing quote")
			}
			raw, s = s[:end], strings.TrimLeft(s[end+1:], kvSpace)
		}
		val := unescapeValue(raw)
		if key == "user" && val == "" {
			continue
		}
		out = append(out, [2]string{key, val})
	}
	return out, nil
}

// unescapeValue applies the backslash rule to a value's raw text.
func unescapeValue(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i++; i == len(s) {
				break
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// checkKeyValue refuses settings that pgx and lib/pq read differently: a
// name that is not a plain word (pgx reads a string whose first name is
// "postgres://" as a URL once rewritten), a setting given twice (pgx takes
// the last; lib/pq "database" over "dbname"), and the refusedKeys.
func checkKeyValue(pairs [][2]string, what string) error {
	seen := map[string]bool{}
	for _, kv := range pairs {
		k := canonicalKey(kv[0])
		if !plainWord(k) {
			return fmt.Errorf("flypg: %s has a setting whose name is not a plain word: quote values that contain white space", what)
		}
		if seen[k] {
			return fmt.Errorf("flypg: %s sets %s twice (pgx takes the last, lib/pq may not): set it once", what, keyName(k))
		}
		if why := refusedKeys[k]; why != "" {
			return fmt.Errorf("flypg: %s sets %s: %s", what, k, why)
		}
		seen[k] = true
	}
	return nil
}

// plainWord is a setting's name as libpq spells them: [A-Za-z_][A-Za-z0-9_]*.
func plainWord(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// setKeyword sets key to value in pairs, replacing the setting pgx reads
// as the same key ("dbname" and "database" are one), or appending it.
func setKeyword(pairs [][2]string, key, value string) [][2]string {
	for i := range pairs {
		if canonicalKey(pairs[i][0]) == canonicalKey(key) {
			pairs[i][1] = value
			return pairs
		}
	}
	return append(pairs, [2]string{key, value})
}

// formatKeyValue writes pairs as a connection string, every value quoted.
func formatKeyValue(pairs [][2]string) string {
	var b strings.Builder
	quote := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s='%s'", p[0], quote.Replace(p[1]))
	}
	return b.String()
}
