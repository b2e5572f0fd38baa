package flypg

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flypg/flypg/internal/backend"
)

// replicaPort is the port Fly.io's PostgreSQL clusters serve read-only
// replica connections on; 5432 reaches the primary through a proxy.
const replicaPort = "5433"

const (
	nearest  = "top1.nearest.of."
	nearest2 = "top2.nearest.of."
)

// ReplicaURL derives, from the primary's URL (Fly.io's DATABASE_URL, the
// same in every region), the URL of the database copy nearest to a node in
// region, following fly_postgres's config_repo_url: the host gets the
// "top1.nearest.of." prefix, which Fly.io's DNS resolves to the closest
// instance of the database cluster — the region's own replica, or the
// nearest one for a region without a replica (a backup region) — left as
// is when present, "top2.nearest.of." becoming "top1."; ".flycast" hosts
// (Fly's private proxy, which routes by itself) are left unchanged; and
// outside the primary region the port becomes 5433, where those instances
// serve read-only connections. With no primary region (dev mode) the URL
// is returned as is.
//
// It accepts postgres:// URLs and key=value connection strings. An
// IP-address host cannot be given a DNS prefix: outside the primary region
// that is an error (set Config.DSN or FLYPG_DSN), never a silent use of the
// primary.
func ReplicaURL(primaryURL, region, primaryRegion string) (string, error) {
	if primaryRegion == "" {
		return primaryURL, nil
	}
	inPrimary := region == primaryRegion
	var out string
	var err error
	if scheme, ok := otherScheme(primaryURL); ok {
		return "", fmt.Errorf("flypg: the database URL has scheme %q; want postgres:// or postgresql:// (in lower case)", scheme)
	}
	if isURL(primaryURL) {
		out, err = replicaURL(primaryURL, inPrimary, region)
	} else {
		out, err = replicaKeyValue(primaryURL, inPrimary, region)
	}
	if err != nil {
		return "", err
	}
	if _, err := pgconn.ParseConfig(out); err != nil {
		return "", fmt.Errorf("flypg: the database URL is not one pgx can use: %s", backend.Redact(err.Error(), out))
	}
	return out, nil
}

// isURL tells a URL from a keyword/value connection string exactly as pgx
// does (pgconn.ParseConfig): by a case-sensitive scheme prefix. Any other
// test ("contains ://", a case-folded scheme) reads some strings in the
// other form than pgx, and rewrites a setting pgx never saw.
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

// urlParts is a postgres:// URL cut where pgx cuts it (pgconn's
// parseURLSettings, which follows libpq's URI parser): the scheme, the
// user information up to the first '@' before any '/', the host list
// (netloc), and the rest (path and query) verbatim; host and port are set
// when the list names one host. Rewriting a URL by splicing these parts,
// rather than re-serialising what net/url read, changes exactly the part
// meant and nothing pgx would read differently.
type urlParts struct {
	scheme, userinfo, netloc, rest string

	hosts      int
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
	p.netloc, p.hosts, p.host, p.port, p.hasPort = b.String(), 1, host, port, hasPort
}

// queryKey is the first of keys the URL's query string sets, or "".
func (p urlParts) queryKey(keys ...string) string {
	_, query, ok := strings.Cut(p.rest, "?")
	if !ok {
		return ""
	}
	for _, pair := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(pair, "=")
		dk, err := url.PathUnescape(strings.Trim(k, " "))
		if err != nil {
			continue
		}
		for _, want := range keys {
			if canonicalKey(dk) == want {
				return want
			}
		}
	}
	return ""
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
		p.hosts++
		if p.hosts == 1 {
			p.host, p.port, p.bracketed, p.hasPort = host, port, bracketed, hasPort
		}
		if !strings.HasPrefix(r, ",") {
			break
		}
		r = r[1:]
	}
	p.netloc, p.rest = start[:len(start)-len(r)], r
	return p, nil
}

// checkURL splits a postgres:// URL, refusing one that pgx and net/url
// (lib/pq's parser, and most tools') would read differently — nearly
// always a password with an unencoded special character — since which
// server and user such a URL names depends on who reads it.
func checkURL(s string) (urlParts, error) {
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }); i >= 0 {
		return urlParts{}, errors.New("flypg: the database URL contains a space, control or non-ASCII character: percent-encode it")
	}
	if strings.Contains(s, "#") {
		// A '#' ends a URL's path for net/url, not for pgx: most likely an
		// unencoded '#' in the password.
		return urlParts{}, errors.New("flypg: the database URL contains '#': percent-encode special characters in the user name and password (# is %23)")
	}
	authority, _, _ := strings.Cut(s[strings.Index(s, "://")+3:], "/")
	if strings.Count(authority, "@") > 1 {
		return urlParts{}, errors.New("flypg: the database URL contains '@' in its user name or password: percent-encode it (@ is %40)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return urlParts{}, backend.ParseError("the database URL", s, err)
	}
	p, err := splitURL(s)
	if err != nil {
		return urlParts{}, err
	}
	if strings.Contains(p.userinfo, "?") {
		return urlParts{}, errors.New("flypg: the database URL contains '?' in its user name or password: percent-encode it (? is %3F)")
	}
	if (u.User == nil) != (p.userinfo == "") || p.hosts == 1 && (u.Hostname() != p.host || u.Port() != p.port) {
		return urlParts{}, errors.New("flypg: the database URL reads differently to different parsers: percent-encode special characters in the user name and password")
	}
	return p, nil
}

func replicaURL(primaryURL string, inPrimary bool, region string) (string, error) {
	parts, err := checkURL(primaryURL)
	if err != nil {
		return "", err
	}
	if k := parts.queryKey("host", "port"); k != "" {
		// pgx lets the query override the host list: the host named
		// before it is not the one a connection would use.
		return "", fmt.Errorf("flypg: the database URL sets %s in its query string: name the host and port before the path, or set FLYPG_DSN (Config.DSN) to the local database", k)
	}
	if parts.hosts != 1 || parts.host == "" {
		return "", errors.New("flypg: the database URL must name exactly one host to derive the replica's address from; set FLYPG_DSN (Config.DSN) to the local database instead")
	}
	if strings.Contains(parts.host, "%") {
		return "", errors.New("flypg: the database URL's host is percent-encoded or has an IPv6 zone: write the host plainly, or set FLYPG_DSN (Config.DSN) to the local database")
	}
	host, err := nearestHost(parts.host, inPrimary, region)
	if err != nil {
		return "", err
	}
	port, hasPort := parts.port, parts.hasPort
	if !inPrimary {
		port, hasPort = replicaPort, true
	}
	parts.setHost(host, port, hasPort)
	return parts.String(), nil
}

// withDatabaseURL is s (a postgres:// URL) naming database name: the
// path, and a dbname/database query parameter if one overrides it.
func withDatabaseURL(s, name string) (string, error) {
	p, err := checkURL(s)
	if err != nil {
		return "", err
	}
	_, query, hasQuery := strings.Cut(p.rest, "?")
	p.rest = "/" + uriEscape(name)
	if hasQuery {
		pairs := strings.Split(query, "&")
		for i, pair := range pairs {
			k, _, _ := strings.Cut(pair, "=")
			if dk, err := url.PathUnescape(strings.Trim(k, " ")); err == nil && canonicalKey(dk) == "database" {
				pairs[i] = k + "=" + uriEscape(name)
			}
		}
		p.rest += "?" + strings.Join(pairs, "&")
	}
	return p.String(), nil
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

// nearestHost applies the DNS prefix.
func nearestHost(host string, inPrimary bool, region string) (string, error) {
	switch {
	case net.ParseIP(host) != nil || host == "localhost":
		if inPrimary {
			return host, nil
		}
		return "", fmt.Errorf("flypg: the database URL's host %s is an address, so the %s replica's address cannot be derived from it: set FLYPG_DSN (Config.DSN) to the local database", host, region)
	case strings.HasSuffix(host, ".flycast"), strings.HasPrefix(host, nearest):
		return host, nil
	case strings.HasPrefix(host, nearest2):
		return nearest + strings.TrimPrefix(host, nearest2), nil
	}
	return nearest + host, nil
}

// replicaKeyValue is replicaURL for "host=… port=…" connection strings.
func replicaKeyValue(dsn string, inPrimary bool, region string) (string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", backend.ParseError("the database connection string", dsn, err)
	}
	pairs, err := parseKeyValue(dsn)
	if err != nil {
		return "", fmt.Errorf("flypg: the database connection string: %w", err)
	}
	var hosts string
	for _, kv := range pairs {
		if kv[0] == "host" {
			hosts = kv[1]
		}
	}
	if strings.Contains(hosts, ",") || strings.HasPrefix(cfg.Host, "/") {
		return "", errors.New("flypg: the database connection string must name exactly one TCP host to derive the replica's address from; set FLYPG_DSN (Config.DSN) to the local database instead")
	}
	host, err := nearestHost(cfg.Host, inPrimary, region)
	if err != nil {
		return "", err
	}
	pairs = setKeyword(pairs, "host", host)
	if !inPrimary {
		pairs = setKeyword(pairs, "port", replicaPort)
	}
	return formatKeyValue(pairs), nil
}

// databaseName is the database a URL or connection string names, as pgx
// would resolve it (PGDATABASE, else the user name), without connecting.
func databaseName(dsn string) (string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", backend.ParseError("the database URL", dsn, err)
	}
	return cfg.Database, nil
}

// withDatabase returns dsn pointed at database name.
func withDatabase(dsn, name string) (string, error) {
	if isURL(dsn) {
		return withDatabaseURL(dsn, name)
	}
	pairs, err := parseKeyValue(dsn)
	if err != nil {
		return "", fmt.Errorf("flypg: FLYPG_DSN: %w", err)
	}
	return formatKeyValue(setKeyword(pairs, "dbname", name)), nil
}

// setKeyword sets key to value in pairs, replacing every setting pgx reads
// as the same key ("dbname" and "database" are one), or appending it.
func setKeyword(pairs [][2]string, key, value string) [][2]string {
	found := false
	for i := range pairs {
		if canonicalKey(pairs[i][0]) == canonicalKey(key) {
			pairs[i][1], found = value, true
		}
	}
	if !found {
		pairs = append(pairs, [2]string{key, value})
	}
	return pairs
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

// canonicalKey is pgx's one alias among connection string keywords.
func canonicalKey(k string) string {
	if k == "dbname" {
		return "database"
	}
	return k
}

// kvSpace is the white space of a keyword/value connection string (C's
// isspace, as libpq and pgx read it).
const kvSpace = " \t\n\r\v\f"

// parseKeyValue splits "k1=v1 k2 = 'v 2'" into its settings in order,
// following pgx's parser (pgconn's parseKeywordValueSettings, after
// libpq's) rule for rule: a keyword runs to the next '=' and may not
// contain white space; an unquoted value ends at white space; a quoted one
// at the closing quote; a backslash escapes the next byte (a trailing one
// is dropped); an empty user is ignored. Reading any differently from pgx
// would rewrite a setting pgx never saw, or miss one it did.
func parseKeyValue(s string) ([][2]string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errors.New("forbidden NUL byte in connection string")
	}
	var out [][2]string
	s = strings.TrimLeft(s, kvSpace)
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New("invalid keyword/value")
		}
		key := strings.Trim(s[:eq], kvSpace)
		if i := strings.IndexAny(key, kvSpace); i >= 0 {
			return nil, fmt.Errorf("missing \"=\" after %q in connection info string", key[:i])
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
				return nil, errors.New("unterminated quoted string in connection info string")
			}
			raw, s = s[:end], strings.TrimLeft(s[end+1:], kvSpace)
		}
		if key == "" {
			return nil, errors.New("invalid keyword/value")
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

// redactErr is err's message with dsn's password (and anything that looks
// like a password in a connection string) removed: for logs.
func redactErr(err error, dsn string) string {
	if err == nil {
		return ""
	}
	return backend.Redact(err.Error(), dsn)
}
