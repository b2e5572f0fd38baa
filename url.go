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
	primaryURL = strings.TrimSpace(primaryURL) // as pgx reads it
	inPrimary := region == primaryRegion
	var out string
	var err error
	if strings.Contains(primaryURL, "://") {
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

func replicaURL(primaryURL string, inPrimary bool, region string) (string, error) {
	u, err := url.Parse(primaryURL)
	if err != nil {
		return "", backend.ParseError("the database URL", primaryURL, err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("flypg: the database URL has scheme %q; want postgres://", u.Scheme)
	}
	if i := strings.IndexFunc(primaryURL, func(r rune) bool { return r <= ' ' || r >= 0x7f }); i >= 0 {
		return "", errors.New("flypg: the database URL contains a space, control or non-ASCII character: percent-encode it")
	}
	authority, _, _ := strings.Cut(primaryURL[strings.Index(primaryURL, "://")+3:], "/")
	if strings.Count(authority, "@") > 1 {
		return "", errors.New("flypg: the database URL contains '@' in its user name or password: percent-encode it (@ is %40)")
	}
	if strings.Contains(primaryURL, "#") {
		// A '#' ends a URL's path: most likely an unencoded '#' in the
		// password, which pgx and net/url would read differently.
		return "", errors.New("flypg: the database URL contains '#': percent-encode special characters in the user name and password (# is %23)")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" || strings.Contains(u.Host, ",") {
		return "", errors.New("flypg: the database URL must name exactly one host to derive the replica's address from; set FLYPG_DSN (Config.DSN) to the local database instead")
	}
	host, err = nearestHost(host, inPrimary, region)
	if err != nil {
		return "", err
	}
	if !inPrimary {
		port = replicaPort
	}
	if port != "" {
		u.Host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	} else {
		u.Host = host
	}
	return u.String(), nil
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
	var hosts string
	for _, kv := range parseKeyValue(dsn) {
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
	out := setKeyword(dsn, "host", host)
	if !inPrimary {
		out = setKeyword(out, "port", replicaPort)
	}
	return out, nil
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
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", backend.ParseError("FLYPG_DSN", dsn, err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", name)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	return setKeyword(dsn, "dbname", name), nil
}

// setKeyword sets key=value in a key=value connection string, replacing an
// existing setting. The string is rewritten with every value quoted.
func setKeyword(dsn, key, value string) string {
	pairs := parseKeyValue(dsn)
	found := false
	for i := range pairs {
		if pairs[i][0] == key {
			pairs[i][1], found = value, true
		}
	}
	if !found {
		pairs = append(pairs, [2]string{key, value})
	}
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

// parseKeyValue splits "k1=v1 k2 = 'v 2'" into its settings, as libpq
// reads them: spaces around '=', single-quoted values with backslash
// escapes.
func parseKeyValue(s string) [][2]string {
	var out [][2]string
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return out
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' {
			i++
		}
		key := s[start:i]
		skip()
		if i < len(s) && s[i] == '=' {
			i++
		}
		skip()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			for i++; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			i++
		} else {
			for ; i < len(s) && s[i] != ' '; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
		}
		out = append(out, [2]string{key, val.String()})
	}
}

// redactErr is err's message with dsn's password (and anything that looks
// like a password in a connection string) removed: for logs.
func redactErr(err error, dsn string) string {
	if err == nil {
		return ""
	}
	return backend.Redact(err.Error(), dsn)
}
