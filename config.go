package flypg

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/transport"
)

// Config configures a Node. The zero value, completed from the environment
// by ConfigFromEnv or by Start's defaults, is a dev-mode pass-through.
// Every field's environment variable is listed in docs/configuration.md.
type Config struct {
	// Region is the node's region. Default $FLY_REGION, else $MY_REGION,
	// else "local".
	Region string
	// PrimaryRegion is the region of the primary database. Default
	// $PRIMARY_REGION. Without it the node is a pure pass-through (dev
	// mode): no cluster, every statement on the local database. It is a
	// preference, not a requirement: writes go to whichever node's
	// database really is the primary (checked every RoleCheckInterval).
	PrimaryRegion string
	// DatabaseURL is the primary's URL for the node's own database — what
	// Fly.io gives every node as DATABASE_URL, the same string in every
	// region. Default $DATABASE_URL.
	DatabaseURL string
	// DSN names the local database explicitly: the primary in the primary
	// region, the region's replica elsewhere. Default $FLYPG_DSN, else
	// ReplicaURL(DatabaseURL, Region, PrimaryRegion).
	DSN string
	// Driver is the wrapped driver: "pgx" (default) or "postgres"
	// (lib/pq). Default $FLYPG_DRIVER.
	Driver string
	// App is the app's name: the gossip cluster label (two apps on one
	// network never merge) and the DNS join name <App>.internal. Default
	// $FLY_APP_NAME.
	App string
	// NodeName identifies the node in the cluster. Default
	// $FLYPG_NODE_NAME, else the hostname plus a random suffix, unique per
	// process start.
	NodeName string
	// GossipAddr is the membership bind address, host:port. Default
	// $FLYPG_GOSSIP_ADDR, else transport's default ("[::]:7946",
	// advertising the machine's private address).
	GossipAddr string
	// RPCAddr is the write-link listen address. Default $FLYPG_RPC_ADDR,
	// else transport's default ("[::]:7947").
	RPCAddr string
	// AdvertiseRPCAddr is the write-link address other nodes dial, when it
	// differs from RPCAddr (NAT, a proxy). Default
	// $FLYPG_ADVERTISE_RPC_ADDR, else the bound address.
	AdvertiseRPCAddr string
	// AdvertiseGossipAddr is the membership address other nodes reach this
	// one at, when the bound one is not it (NAT, or a bind to [::] on a host
	// where the address found below is the wrong one). Default
	// $FLYPG_ADVERTISE_GOSSIP_ADDR, else $FLY_PRIVATE_IP, else the address
	// of fly-local-6pn, else the first global unicast address of an
	// interface (of the bound address's family first).
	AdvertiseGossipAddr string
	// Join lists peers' gossip addresses. Default $FLYPG_JOIN (comma
	// separated), else the DNS name <App>.internal (AAAA on Fly.io) when
	// App is set.
	Join []string
	// Secret is the shared cluster secret: it encrypts gossip and
	// authenticates and encrypts the write link. At least 32 random bytes
	// outside dev mode (`go run github.com/flypg/flypg/cmd/flypg-lab secret`
	// makes one). Default $FLYPG_SECRET.
	Secret []byte
	// PreviousSecrets are still accepted from peers, so a rolling deploy
	// can rotate the secret (docs/security.md). Default
	// $FLYPG_SECRET_PREVIOUS (comma separated).
	PreviousSecrets [][]byte
	// AwaitTimeout bounds how long a write waits for the local replica to
	// replay it. Default $FLYPG_AWAIT_TIMEOUT, else 5s.
	AwaitTimeout time.Duration
	// AwaitTimeoutPolicy says what a write that committed but was not
	// replayed in time returns: AwaitTimeoutError (default, an
	// *AwaitError) or AwaitTimeoutSucceed (nil, counted and logged). Default
	// $FLYPG_AWAIT_TIMEOUT_POLICY ("error" or "succeed").
	AwaitTimeoutPolicy AwaitTimeoutPolicy
	// RPCTimeout bounds a forwarded call — sending it, waiting for capacity
	// on the serving node, running it, and reading its result — when the
	// caller's context has no deadline (a caller's deadline bounds all of
	// it, and awaiting too). A forwarded read of a large result that the app
	// reads slowly needs a deadline of its own, or a larger RPCTimeout.
	// Default $FLYPG_RPC_TIMEOUT, else 5s.
	RPCTimeout time.Duration
	// GossipProfile tunes membership timings: "wan" (default), "lan", or
	// "local" (fast failure detection for tests on one machine). Default
	// $FLYPG_GOSSIP_PROFILE.
	GossipProfile string
	// MaxServeConns bounds, per database, the primary connections a
	// primary-region node opens for the work other regions forward, so that
	// they cannot exhaust the primary's max_connections; requests beyond
	// it wait until their deadline. Default 40.
	MaxServeConns int
	// MaxTxPerPeer bounds the remote transactions one caller node holds
	// open on this node at once; more wait for a slot. Default 32.
	MaxTxPerPeer int
	// RemoteTxIdleTimeout rolls back a remote transaction this node serves
	// whose caller sent nothing for this long after its last statement
	// ended (a stuck goroutine holding a *sql.Tx). Default 1 min.
	RemoteTxIdleTimeout time.Duration
	// RoleCheckInterval is how often the node asks each local database
	// whether it is the primary (and at once after a refused write or a
	// connection error), so a promotion reroutes writes by itself. Default
	// 2s.
	RoleCheckInterval time.Duration
	// MaxProtocolVersion caps the write link's protocol version this node
	// speaks (default: the newest). Nodes negotiate the highest version both
	// speak, and a release speaks the previous version too, so a rolling
	// upgrade needs nothing; pinning the old version on new nodes keeps a
	// mixed cluster on it until the last old node is gone. See package
	// transport's documentation, "Versions". (Version 2 carries requests
	// and replies of one frame: results over 4 MiB need version 3.)
	MaxProtocolVersion int
	// InsecurePlaintext turns off TLS on the write link. For benchmarks and
	// tests of the link itself only; never in production.
	InsecurePlaintext bool
	// Logger receives the node's logs: nothing per statement at Info, one
	// line per state change (local database unreachable and back, role
	// changes, promotion). Default slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told about every forwarded request and every
	// await, for tracing. Default none.
	Observer Observer
}

// AwaitTimeoutPolicy is what a committed but not yet replayed write
// returns; see Config.AwaitTimeoutPolicy.
type AwaitTimeoutPolicy int

const (
	// AwaitTimeoutError returns an *AwaitError carrying the result.
	AwaitTimeoutError AwaitTimeoutPolicy = iota
	// AwaitTimeoutSucceed returns success; Stats.AwaitTimeouts counts it
	// and it is logged at Warn, once a minute at most.
	AwaitTimeoutSucceed
)

const (
	defaultRegion        = "local"
	defaultAwaitTimeout  = 5 * time.Second
	defaultRPCTimeout    = 5 * time.Second
	defaultMaxServeConns = 40
	defaultMaxTxPerPeer  = 32
	defaultRoleCheck     = 2 * time.Second
)

// ConfigFromEnv builds a Config from the environment (see each field), and
// completes it with the defaults. Errors name the variable and never
// include a password or secret.
func ConfigFromEnv() (Config, error) {
	cfg, err := Config{}.complete()
	if _, lerr := cfg.localDSN(); lerr != nil {
		err = errors.Join(err, lerr)
	}
	return cfg, errors.Join(err, cfg.validate(false))
}

// complete is withDefaults, also parsing the variables that can be
// malformed (durations, the await policy): a hand-built Config passed to
// Start reads the environment exactly as ConfigFromEnv does.
func (c Config) complete() (Config, error) {
	var errs []error
	if len(c.PreviousSecrets) == 0 {
		for _, p := range strings.Split(os.Getenv("FLYPG_SECRET_PREVIOUS"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.PreviousSecrets = append(c.PreviousSecrets, []byte(p))
			}
		}
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{"FLYPG_AWAIT_TIMEOUT", &c.AwaitTimeout}, {"FLYPG_RPC_TIMEOUT", &c.RPCTimeout}} {
		if v := os.Getenv(d.env); v != "" && *d.dst == 0 {
			dur, err := time.ParseDuration(v)
			if err != nil || dur <= 0 {
				errs = append(errs, fmt.Errorf("flypg: %s=%q: want a positive Go duration such as 5s", d.env, v))
				continue
			}
			*d.dst = dur
		}
	}
	if c.AwaitTimeoutPolicy == AwaitTimeoutError {
		switch v := os.Getenv("FLYPG_AWAIT_TIMEOUT_POLICY"); v {
		case "", "error":
		case "succeed":
			c.AwaitTimeoutPolicy = AwaitTimeoutSucceed
		default:
			errs = append(errs, fmt.Errorf("flypg: FLYPG_AWAIT_TIMEOUT_POLICY=%q: want \"error\" or \"succeed\"", v))
		}
	}
	return c.withDefaults(), errors.Join(errs...)
}

// withDefaults fills what the caller left empty, from the environment where
// the field says so, so that a hand-built Config behaves like ConfigFromEnv.
func (c Config) withDefaults() Config {
	envDefault(&c.Region, "FLY_REGION")
	envDefault(&c.Region, "MY_REGION")
	if c.Region == "" {
		c.Region = defaultRegion
	}
	envDefault(&c.PrimaryRegion, "PRIMARY_REGION")
	envDefault(&c.DatabaseURL, "DATABASE_URL")
	envDefault(&c.DSN, "FLYPG_DSN")
	envDefault(&c.Driver, "FLYPG_DRIVER")
	envDefault(&c.App, "FLY_APP_NAME")
	envDefault(&c.NodeName, "FLYPG_NODE_NAME")
	envDefault(&c.GossipAddr, "FLYPG_GOSSIP_ADDR")
	envDefault(&c.RPCAddr, "FLYPG_RPC_ADDR")
	envDefault(&c.AdvertiseRPCAddr, "FLYPG_ADVERTISE_RPC_ADDR")
	envDefault(&c.AdvertiseGossipAddr, "FLYPG_ADVERTISE_GOSSIP_ADDR")
	envDefault(&c.GossipProfile, "FLYPG_GOSSIP_PROFILE")
	if len(c.Join) == 0 {
		for _, p := range strings.Split(os.Getenv("FLYPG_JOIN"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.Join = append(c.Join, p)
			}
		}
	}
	if len(c.Join) == 0 && c.App != "" {
		c.Join = []string{c.App + ".internal"}
	}
	if len(c.Secret) == 0 {
		if s := os.Getenv("FLYPG_SECRET"); s != "" {
			c.Secret = []byte(s)
		}
	}
	if c.GossipProfile == "" {
		c.GossipProfile = transport.ProfileWAN
	}
	if c.AwaitTimeout <= 0 {
		c.AwaitTimeout = defaultAwaitTimeout
	}
	if c.RPCTimeout <= 0 {
		c.RPCTimeout = defaultRPCTimeout
	}
	if c.MaxServeConns <= 0 {
		c.MaxServeConns = defaultMaxServeConns
	}
	if c.MaxTxPerPeer <= 0 {
		c.MaxTxPerPeer = defaultMaxTxPerPeer
	}
	if c.RoleCheckInterval <= 0 {
		c.RoleCheckInterval = defaultRoleCheck
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func envDefault(dst *string, key string) {
	if *dst == "" {
		*dst = os.Getenv(key)
	}
}

// localDSN is the node's own local database: DSN, or the one derived from
// DatabaseURL. It never silently uses the primary as a replica region's
// local database.
func (c Config) localDSN() (string, error) {
	if c.DSN != "" {
		return c.DSN, nil
	}
	if c.DatabaseURL == "" {
		return "", nil
	}
	return c.localFor(c.DatabaseURL)
}

// localFor derives the local copy of the database whose primary URL is
// url: the explicit DSN's server with url's database name, else
// ReplicaURL.
func (c Config) localFor(url string) (string, error) {
	if c.role() == roleDev {
		return url, nil
	}
	if c.DSN != "" {
		name, err := databaseName(url)
		if err != nil {
			return "", err
		}
		return withDatabase(c.DSN, name)
	}
	return ReplicaURL(url, c.Region, c.PrimaryRegion)
}

// role is what a node does, decided by its regions.
type role int

const (
	// roleDev: no primary region configured; a pure pass-through, no cluster.
	roleDev role = iota
	// rolePrimary: in the primary region: runs its statements locally and
	// serves the work other regions forward (while its database is the
	// primary).
	rolePrimary
	// roleReplica: in a replica region: reads locally, forwards writes.
	roleReplica
)

func (c Config) role() role {
	switch {
	case c.PrimaryRegion == "" || c.PrimaryRegion == defaultRegion && c.Region == defaultRegion:
		return roleDev
	case c.Region == c.PrimaryRegion:
		return rolePrimary
	default:
		return roleReplica
	}
}

// validate checks the settings Start needs — the driver and, outside dev
// mode, the secrets and the gossip profile — and returns every problem at
// once. A missing secret is a problem only for Start (requireSecret):
// after ConfigFromEnv the app may still set Config.Secret itself.
func (c Config) validate(requireSecret bool) error {
	var errs []error
	if _, err := backend.ForName(c.Driver); err != nil {
		errs = append(errs, err)
	}
	if c.role() == roleDev {
		return errors.Join(errs...)
	}
	switch c.GossipProfile {
	case transport.ProfileWAN, transport.ProfileLAN, transport.ProfileLocal:
	default:
		errs = append(errs, fmt.Errorf("flypg: unknown GossipProfile %q (FLYPG_GOSSIP_PROFILE): want %q, %q or %q",
			c.GossipProfile, transport.ProfileWAN, transport.ProfileLAN, transport.ProfileLocal))
	}
	if len(c.Secret) == 0 {
		if requireSecret {
			errs = append(errs, errors.New("flypg: a cluster secret is required outside dev mode: set FLYPG_SECRET (or Config.Secret) to the same value on every node; make one with `openssl rand -base64 32` or `go run github.com/flypg/flypg/cmd/flypg-lab secret`"))
		}
	} else if err := transport.ValidateSecret(c.Secret); err != nil {
		errs = append(errs, fmt.Errorf("flypg: FLYPG_SECRET: %w", err))
	}
	for i, s := range c.PreviousSecrets {
		if err := transport.ValidateSecret(s); err != nil {
			errs = append(errs, fmt.Errorf("flypg: FLYPG_SECRET_PREVIOUS (secret %d): %w", i+1, err))
		}
	}
	return errors.Join(errs...)
}
