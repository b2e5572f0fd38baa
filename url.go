package flypg

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

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
// It accepts postgres:// URLs and key=value connection strings, and
// changes nothing in them but the host and port: the result is read by pgx
// (and by lib/pq) exactly as the input is, but for those. A string that
// cannot be rewritten that way is refused with an error that says why and
// never quotes the password: an IP-address host outside the primary region
// (there is no DNS name to prefix: set Config.DSN or FLYPG_DSN), several
// hosts, a host or port set in a URL's query, a service file, or anything
// pgx and lib/pq would read differently (see the errors).
func ReplicaURL(primaryURL, region, primaryRegion string) (string, error) {
	if primaryRegion == "" {
		return primaryURL, nil
	}
	what := whatConnString(primaryURL)
	if scheme, ok := otherScheme(primaryURL); ok {
		return "", fmt.Errorf("flypg: %s has scheme %q; want postgres:// or postgresql:// (in lower case)", what, scheme)
	}
	if err := checkEnv(); err != nil {
		return "", err
	}
	before, err := pgconn.ParseConfig(primaryURL)
	if err != nil {
		return "", backend.ParseError(what, primaryURL, err)
	}
	if err := oneHost(before, what); err != nil {
		return "", err
	}
	inPrimary := region == primaryRegion
	var out string
	if isURL(primaryURL) {
		out, err = replicaURL(primaryURL, before, inPrimary, region)
	} else {
		out, err = replicaKeyValue(primaryURL, before, inPrimary, region)
	}
	if err != nil {
		return "", err
	}
	after, err := pgconn.ParseConfig(out)
	if err == nil && after.Password != before.Password && !holdsPassword(primaryURL) {
		// pgx found the password in a password file, by host and port.
		return "", fmt.Errorf("flypg: the password for %s comes from a password file (.pgpass, PGPASSFILE) entry for the primary's host and port: add one for %s:%d, or put the password in %s", what, after.Host, after.Port, what)
	}
	if err != nil || after.Database != before.Database || after.User != before.User || after.Password != before.Password {
		// Every rule above exists so that this cannot happen.
		return "", fmt.Errorf("flypg: %s could not be rewritten for the replica without changing it: set FLYPG_DSN (Config.DSN) to the local database", what)
	}
	return out, nil
}

// holdsPassword: s sets a password itself (in a URL's user information
// or a password setting), not through a password file.
func holdsPassword(s string) bool {
	if isURL(s) {
		if p, err := splitURL(s); err == nil {
			_, pw, ok := strings.Cut(strings.TrimSuffix(p.userinfo, "@"), ":")
			if ok && pw != "" {
				return true
			}
		}
	}
	return strings.Contains(strings.ToLower(s), "password")
}

// whatConnString names a connection string's form in errors.
func whatConnString(s string) string {
	if isURL(s) {
		return "the database URL"
	}
	return "the database connection string"
}

// checkEnv refuses libpq environment variables that would send a
// connection elsewhere than the derived host: lib/pq lets a service file
// and PGHOSTADDR override the connection string.
func checkEnv() error {
	for _, k := range []string{"PGSERVICE", "PGSERVICEFILE", "PGHOSTADDR"} {
		if os.Getenv(k) != "" {
			return fmt.Errorf("flypg: %s is set, which can override the host derived for the replica: unset it, or set FLYPG_DSN (Config.DSN) to the local database", k)
		}
	}
	return nil
}

// oneHost refuses a connection string (or PGHOST) naming several hosts or
// a Unix socket: a replica's address is derived from one TCP host.
func oneHost(cfg *pgconn.Config, what string) error {
	multi := false
	for _, fb := range cfg.Fallbacks {
		if fb.Host != cfg.Host || fb.Port != cfg.Port {
			multi = true
		}
	}
	if multi || strings.HasPrefix(cfg.Host, "/") {
		return fmt.Errorf("flypg: %s must name exactly one TCP host to derive the replica's address from; set FLYPG_DSN (Config.DSN) to the local database instead", what)
	}
	return nil
}

func replicaURL(primaryURL string, before *pgconn.Config, inPrimary bool, region string) (string, error) {
	parts, err := checkURL(primaryURL, "the database URL")
	if err != nil {
		return "", err
	}
	if k := parts.queryKey("host", "port"); k != "" {
		// pgx lets the query override the host list: the host named
		// before it is not the one a connection would use.
		return "", fmt.Errorf("flypg: the database URL sets %s in its query string: name the host and port before the path, or set FLYPG_DSN (Config.DSN) to the local database", k)
	}
	if len(parts.hosts) != 1 || parts.host == "" {
		return "", errors.New("flypg: the database URL must name exactly one host to derive the replica's address from; set FLYPG_DSN (Config.DSN) to the local database instead")
	}
	host, err := nearestHost(parts.host, "the database URL", inPrimary, region)
	if err != nil {
		return "", err
	}
	port, hasPort := parts.port, parts.hasPort
	switch {
	case !inPrimary:
		port, hasPort = replicaPort, true
	case !hasPort && strings.Contains(host, ":"):
		// lib/pq keeps the brackets of an IPv6 host without a port:
		// write the port pgx would use.
		port, hasPort = strconv.Itoa(int(before.Port)), true
	}
	parts.setHost(host, port, hasPort)
	return parts.String(), nil
}

// replicaKeyValue is replicaURL for "host=… port=…" connection strings.
func replicaKeyValue(dsn string, cfg *pgconn.Config, inPrimary bool, region string) (string, error) {
	pairs, err := parseKeyValue(dsn)
	if err != nil {
		return "", fmt.Errorf("flypg: the database connection string: %w", err)
	}
	if err := checkKeyValue(pairs, "the database connection string"); err != nil {
		return "", err
	}
	if !validHost(cfg.Host) {
		return "", errors.New("flypg: the database connection string's host is neither a DNS name nor an IP address: set FLYPG_DSN (Config.DSN) to the local database")
	}
	host, err := nearestHost(cfg.Host, "the database connection string", inPrimary, region)
	if err != nil {
		return "", err
	}
	pairs = setKeyword(pairs, "host", host)
	if !inPrimary {
		pairs = setKeyword(pairs, "port", replicaPort)
	}
	return formatKeyValue(pairs), nil
}

// nearestHost applies the DNS prefix. Names are compared as DNS compares
// them: without case, and with or without the root's trailing dot.
func nearestHost(host, what string, inPrimary bool, region string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case net.ParseIP(host) != nil || name == "localhost":
		if inPrimary {
			return host, nil
		}
		return "", fmt.Errorf("flypg: %s's host %s is an address, so the %s replica's address cannot be derived from it: set FLYPG_DSN (Config.DSN) to the local database", what, host, region)
	case strings.HasSuffix(name, ".flycast"), strings.HasPrefix(name, nearest):
		return host, nil
	case strings.HasPrefix(name, nearest2):
		return nearest + host[len(nearest2):], nil
	}
	if len(nearest+host) > 253 {
		return "", errors.New("flypg: the database host name is too long for the replica's prefix (over 253 characters)")
	}
	return nearest + host, nil
}

// databaseName is the database a URL or connection string names, as the
// server would resolve it: the database pgx reads (from the string or
// PGDATABASE), else the user name, without connecting.
func databaseName(dsn string) (string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", backend.ParseError(whatConnString(dsn), dsn, err)
	}
	if cfg.Database == "" {
		return cfg.User, nil
	}
	return cfg.Database, nil
}

// withDatabase returns dsn (FLYPG_DSN, the local database) pointed at
// database name, changing nothing else pgx reads.
func withDatabase(dsn, name string) (string, error) {
	if name == "" || !utf8.ValidString(name) {
		return "", errors.New("flypg: no database name (in UTF-8) to point FLYPG_DSN at")
	}
	before, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", backend.ParseError("FLYPG_DSN", dsn, err)
	}
	var out string
	if isURL(dsn) {
		p, err := checkURL(dsn, "FLYPG_DSN")
		if err != nil {
			return "", err
		}
		if len(p.hosts) == 1 && p.bracketed && !p.hasPort {
			// lib/pq keeps the brackets of an IPv6 host without a port.
			p.setHost(p.host, strconv.Itoa(int(before.Port)), true)
		}
		out = p.withDatabase(name)
	} else {
		pairs, err := parseKeyValue(dsn)
		if err != nil {
			return "", fmt.Errorf("flypg: FLYPG_DSN: %w", err)
		}
		if err := checkKeyValue(pairs, "FLYPG_DSN"); err != nil {
			return "", err
		}
		out = formatKeyValue(setKeyword(pairs, "dbname", name))
	}
	if cfg, err := pgconn.ParseConfig(out); err != nil || cfg.Database != name {
		return "", errors.New("flypg: FLYPG_DSN could not be pointed at the database without changing it: name each database in its own FLYPG_DSN")
	}
	return out, nil
}

// redactErr is err's message with dsn's password (and anything that looks
// like a password in a connection string) removed: for logs.
func redactErr(err error, dsn string) string {
	if err == nil {
		return ""
	}
	return backend.Redact(err.Error(), dsn)
}
