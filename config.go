package flypg

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config configures a Node. The zero value, completed from the environment by
// ConfigFromEnv or by Start's defaults, is a dev-mode pass-through.
type Config struct {
	// Region is the node's region. Default $FLY_REGION, else "local".
	Region string
	// PrimaryRegion is the region of the primary database. Default
	// $PRIMARY_REGION, else "local". When it equals Region (or both are
	// unset) the node runs every statement locally.
	PrimaryRegion string
	// DSN is the local database: the primary in the primary region, the
	// region's replica elsewhere. Default $FLYPG_DSN, else $DATABASE_URL
	// rewritten by ReplicaURL.
	DSN string
	// NodeName identifies the node in the cluster. Default: hostname plus a
	// random suffix, unique per process start.
	NodeName string
	// GossipAddr is the memberlist bind host:port. Default
	// $FLYPG_GOSSIP_ADDR, else ":7946" ("127.0.0.1:0" picks a free port).
	GossipAddr string
	// RPCAddr is the write-link listen host:port. Default $FLYPG_RPC_ADDR,
	// else ":7947" ("127.0.0.1:0" picks a free port).
	RPCAddr string
	// AdvertiseRPCAddr is the write-link address other nodes dial, when it
	// differs from RPCAddr (NAT, a proxy). Default $FLYPG_ADVERTISE_RPC_ADDR,
	// else the bound RPCAddr.
	AdvertiseRPCAddr string
	// Join lists peers' gossip addresses. Default $FLYPG_JOIN (comma
	// separated), else the DNS name <FLY_APP_NAME>.internal when
	// FLY_APP_NAME is set.
	Join []string
	// Secret is the shared cluster secret that encrypts gossip and
	// authenticates the write link. Default $FLYPG_SECRET. Required outside
	// dev mode.
	Secret []byte
	// AwaitTimeout bounds how long a write waits for the local replica to
	// replay it. Default 5s.
	AwaitTimeout time.Duration
	// RPCTimeout bounds a forwarded call when the caller's context has no
	// deadline. Default 5s.
	RPCTimeout time.Duration
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger
	// GossipProfile tunes membership timings: "wan" (default; memberlist's
	// WAN config, for regions on different continents), "lan", or "local"
	// (fast failure detection for tests on one machine). Default
	// $FLYPG_GOSSIP_PROFILE, else "wan".
	GossipProfile string
}

const (
	defaultRegion       = "local"
	defaultGossipAddr   = ":7946"
	defaultRPCAddr      = ":7947"
	defaultAwaitTimeout = 5 * time.Second
	defaultRPCTimeout   = 5 * time.Second
)

// ConfigFromEnv builds a Config from the environment: FLY_REGION,
// PRIMARY_REGION, DATABASE_URL, FLYPG_DSN, FLY_APP_NAME, FLYPG_JOIN, FLYPG_SECRET,
// FLYPG_GOSSIP_ADDR, FLYPG_RPC_ADDR, FLYPG_NODE_NAME, FLYPG_AWAIT_TIMEOUT and
// FLYPG_RPC_TIMEOUT (Go durations).
func ConfigFromEnv() (Config, error) {
	cfg := Config{
		Region:        os.Getenv("FLY_REGION"),
		PrimaryRegion: os.Getenv("PRIMARY_REGION"),
		NodeName:      os.Getenv("FLYPG_NODE_NAME"),
		GossipAddr:    os.Getenv("FLYPG_GOSSIP_ADDR"),
		RPCAddr:       os.Getenv("FLYPG_RPC_ADDR"),
	}
	if s := os.Getenv("FLYPG_SECRET"); s != "" {
		cfg.Secret = []byte(s)
	}
	for _, p := range strings.Split(os.Getenv("FLYPG_JOIN"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Join = append(cfg.Join, p)
		}
	}
	if len(cfg.Join) == 0 {
		if app := os.Getenv("FLY_APP_NAME"); app != "" {
			cfg.Join = []string{app + ".internal"}
		}
	}
	var errs []error
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{"FLYPG_AWAIT_TIMEOUT", &cfg.AwaitTimeout}, {"FLYPG_RPC_TIMEOUT", &cfg.RPCTimeout}} {
		if v := os.Getenv(d.env); v != "" {
			dur, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("flypg: %s: %w", d.env, err))
			}
			*d.dst = dur
		}
	}
	cfg = cfg.withDefaults()
	if cfg.DSN = os.Getenv("FLYPG_DSN"); cfg.DSN != "" {
		return cfg, errors.Join(errs...)
	}
	if url := os.Getenv("DATABASE_URL"); url != "" {
		dsn, err := ReplicaURL(url, cfg.Region, cfg.PrimaryRegion)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.DSN = dsn
	}
	return cfg, errors.Join(errs...)
}

// withDefaults fills what the caller left empty, from the environment where
// DESIGN says so, so that a hand-built Config behaves like ConfigFromEnv.
func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = envOr("FLY_REGION", defaultRegion)
	}
	if c.PrimaryRegion == "" {
		c.PrimaryRegion = envOr("PRIMARY_REGION", defaultRegion)
	}
	if c.DSN == "" {
		c.DSN = os.Getenv("FLYPG_DSN")
	}
	if c.DSN == "" {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			c.DSN, _ = ReplicaURL(u, c.Region, c.PrimaryRegion)
		}
	}
	if c.GossipAddr == "" {
		c.GossipAddr = envOr("FLYPG_GOSSIP_ADDR", defaultGossipAddr)
	}
	if c.RPCAddr == "" {
		c.RPCAddr = envOr("FLYPG_RPC_ADDR", defaultRPCAddr)
	}
	if c.AdvertiseRPCAddr == "" {
		c.AdvertiseRPCAddr = os.Getenv("FLYPG_ADVERTISE_RPC_ADDR")
	}
	if len(c.Secret) == 0 {
		if s := os.Getenv("FLYPG_SECRET"); s != "" {
			c.Secret = []byte(s)
		}
	}
	if c.GossipProfile == "" {
		c.GossipProfile = envOr("FLYPG_GOSSIP_PROFILE", "wan")
	}
	if c.AwaitTimeout <= 0 {
		c.AwaitTimeout = defaultAwaitTimeout
	}
	if c.RPCTimeout <= 0 {
		c.RPCTimeout = defaultRPCTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// role is what a node does, decided by its regions.
type role int

const (
	// roleDev: no primary region configured; a pure pass-through, no cluster.
	roleDev role = iota
	// rolePrimary: in the primary region; runs everything locally and serves
	// the work replica-region nodes forward.
	rolePrimary
	// roleReplica: in a replica region; reads locally, forwards writes.
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

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// replicaPort is the port Fly.io's PostgreSQL clusters serve read-only
// replica connections on; 5432 reaches the primary through a proxy.
const replicaPort = "5433"

// ReplicaURL rewrites a primary database URL for a node in region: in the
// primary region (or with no primary region) it returns the URL unchanged;
// elsewhere it points the host at the region's replica, "<region>.<host>",
// on port 5433 — the convention of Fly.io's PostgreSQL clusters (and
// fly_postgres's config_repo_url). Apps with another layout set Config.DSN
// themselves.
func ReplicaURL(databaseURL, region, primaryRegion string) (string, error) {
	if primaryRegion == "" || region == "" || region == primaryRegion {
		return databaseURL, nil
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("flypg: DATABASE_URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("flypg: DATABASE_URL: want a postgres:// URL, got scheme %q", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return "", errors.New("flypg: DATABASE_URL has no host")
	}
	if net.ParseIP(host) != nil {
		return "", fmt.Errorf("flypg: DATABASE_URL host %s is an IP address, so the %s replica's address cannot be derived from it: set Config.DSN", host, region)
	}
	u.Host = net.JoinHostPort(region+"."+host, replicaPort)
	return u.String(), nil
}
