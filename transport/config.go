package transport

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures a Transport. Zero values take the defaults documented on
// each field; durations left zero come from the Profile.
type Config struct {
	// NodeName identifies the node in the cluster and must be unique.
	// Default: hostname + "-" + a random suffix, so a restarted process is a
	// new member rather than a ghost of the old one.
	NodeName string
	// Region is the node's region. Default "local".
	Region string
	// PrimaryRegion is where CallPrimary looks when no member advertises
	// Meta.Primary (for instance because no node has a Primary callback).
	// Optional.
	PrimaryRegion string

	// GossipAddr is the memberlist bind host:port, for both TCP and UDP.
	// Default "0.0.0.0:7946"; port 0 picks a port free for both. The bound
	// IP is advertised, except that 0.0.0.0 is replaced by a private IPv4
	// address; for IPv6 bind a specific address (on Fly.io, the
	// fly-local-6pn address), as "::" cannot be advertised.
	GossipAddr string
	// RPCAddr is the link's listen host:port. Default "0.0.0.0:7947"; port 0
	// picks a free port.
	RPCAddr string
	// AdvertiseRPCAddr is the link address other nodes dial, when it differs
	// from the listen address (NAT, proxies). Default: RPCAddr's bound
	// address, with an unspecified host replaced by the gossip address's IP.
	AdvertiseRPCAddr string

	// Join lists peers' gossip addresses (host:port). Joining is retried in
	// the background, with backoff, until one answers — and again whenever
	// the node finds itself alone.
	Join []string
	// JoinDNS is a name resolved (AAAA and A) to find peers, as on Fly.io:
	// "<FLY_APP_NAME>.internal". Optional "host:port"; without a port the
	// local gossip port is assumed.
	JoinDNS string

	// Secret is the cluster secret, of any length. It is required: the
	// gossip key and the link authentication key are both derived from it,
	// so nodes with different secrets never talk.
	Secret []byte
	// Label is the memberlist cluster label. Default "flypg".
	Label string
	// Profile picks failure-detection timings: "wan" (default; memberlist's
	// DefaultWANConfig, for nodes spread over regions), "lan"
	// (DefaultLANConfig) or "local" (fast probing, for tests on one host: a
	// dead node is declared dead within about 1–2 s).
	Profile string
	// TLS, when set, wraps the link in TLS (the authentication handshake
	// still runs inside it). Clients without ServerName use the dialled
	// host.
	TLS *tls.Config

	// MaxFrameSize caps a frame, and hence a request or response body.
	// Default 4 MiB. Peers should agree on it.
	MaxFrameSize int
	// MaxInFlight caps the requests a server runs at once for one inbound
	// link; excess requests are refused at once (ErrNotSent). Default 1024.
	MaxInFlight int

	// DialTimeout bounds a TCP dial. Profile default.
	DialTimeout time.Duration
	// HandshakeTimeout bounds TLS plus authentication, on both sides.
	// Profile default.
	HandshakeTimeout time.Duration
	// KeepAlive is how often a client pings its links; pongs also measure
	// RTT. Profile default.
	KeepAlive time.Duration
	// IdleTimeout is how long a link may go without receiving anything (not
	// even a ping or pong) before the peer is presumed dead; it also bounds
	// every write. Must exceed KeepAlive plus an RTT. Profile default.
	IdleTimeout time.Duration
	// DrainTimeout bounds how long Close waits for in-flight requests, in
	// both directions, before cutting them off. Profile default.
	DrainTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential, jittered backoff
	// between reconnect and join attempts. Profile defaults.
	BackoffMin, BackoffMax time.Duration

	// Primary, if set, is polled every PrimaryInterval and its answer is
	// advertised as Meta.Primary. It must return promptly.
	Primary func() bool
	// PrimaryInterval is how often Primary is polled. Profile default.
	PrimaryInterval time.Duration

	// Logger receives the transport's logs, memberlist's included. Default
	// slog.Default().
	Logger *slog.Logger
}

// Profiles.
const (
	ProfileWAN   = "wan"
	ProfileLAN   = "lan"
	ProfileLocal = "local"
)

// DefaultMaxFrameSize is Config.MaxFrameSize's default: the largest request
// or response body a link carries.
const DefaultMaxFrameSize = 4 << 20

const (
	defaultRegion      = "local"
	defaultLabel       = "flypg"
	defaultGossipAddr  = "0.0.0.0:7946"
	defaultRPCAddr     = "0.0.0.0:7947"
	defaultMaxInFlight = 1024

	// handshakeMaxFrame caps frames before authentication: the handshake's
	// frames are tiny, and an unauthenticated peer must not make us
	// allocate MaxFrameSize.
	handshakeMaxFrame = 512
	// maxHandshakes bounds connections in the handshake at once, so a flood
	// of unauthenticated connections costs bounded goroutines and memory.
	maxHandshakes = 64
)

// profile holds the timings a Profile implies.
type profile struct {
	memberlist                                 func() *memberlist.Config
	dial, handshake, keepAlive, idle, drain    time.Duration
	backoffMin, backoffMax, primaryPoll, leave time.Duration
	rejoinCheck                                time.Duration
}

var profiles = map[string]profile{
	ProfileWAN: {
		memberlist: memberlist.DefaultWANConfig,
		dial:       5 * time.Second, handshake: 10 * time.Second,
		keepAlive: 10 * time.Second, idle: 35 * time.Second, drain: 10 * time.Second,
		backoffMin: 200 * time.Millisecond, backoffMax: 30 * time.Second,
		primaryPoll: 2 * time.Second, leave: 5 * time.Second, rejoinCheck: 30 * time.Second,
	},
	ProfileLAN: {
		memberlist: memberlist.DefaultLANConfig,
		dial:       2 * time.Second, handshake: 5 * time.Second,
		keepAlive: 5 * time.Second, idle: 20 * time.Second, drain: 10 * time.Second,
		backoffMin: 100 * time.Millisecond, backoffMax: 10 * time.Second,
		primaryPoll: time.Second, leave: 2 * time.Second, rejoinCheck: 10 * time.Second,
	},
	// Fast to notice, yet loose enough for a loaded CI machine.
	ProfileLocal: {
		memberlist: fastMemberlistConfig,
		dial:       2 * time.Second, handshake: 3 * time.Second,
		keepAlive: 500 * time.Millisecond, idle: 5 * time.Second, drain: 2 * time.Second,
		backoffMin: 20 * time.Millisecond, backoffMax: time.Second,
		primaryPoll: 100 * time.Millisecond, leave: 500 * time.Millisecond, rejoinCheck: time.Second,
	},
}

// fastMemberlistConfig detects a dead node in about 1–2 s on one host:
// probes every 300 ms, a suspect is declared dead after 0.9–1.8 s. Too
// twitchy for real networks.
func fastMemberlistConfig() *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	c.ProbeInterval = 300 * time.Millisecond
	c.ProbeTimeout = 200 * time.Millisecond
	c.SuspicionMult = 3
	c.SuspicionMaxTimeoutMult = 2
	c.GossipInterval = 50 * time.Millisecond
	c.GossipNodes = 3
	c.PushPullInterval = 2 * time.Second
	c.TCPTimeout = time.Second
	c.GossipToTheDeadTime = 2 * time.Second
	c.DeadNodeReclaimTime = time.Second
	return c
}

// withDefaults returns c completed with defaults, and the profile.
func (c Config) withDefaults() (Config, profile, error) {
	if c.Profile == "" {
		c.Profile = ProfileWAN
	}
	p, ok := profiles[c.Profile]
	if !ok {
		return c, p, fmt.Errorf("transport: unknown Profile %q (want %q, %q or %q)", c.Profile, ProfileWAN, ProfileLAN, ProfileLocal)
	}
	if len(c.Secret) == 0 {
		return c, p, errors.New("transport: Config.Secret is required")
	}
	if c.NodeName == "" {
		c.NodeName = defaultNodeName()
	}
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if c.Label == "" {
		c.Label = defaultLabel
	}
	if c.GossipAddr == "" {
		c.GossipAddr = defaultGossipAddr
	}
	if c.RPCAddr == "" {
		c.RPCAddr = defaultRPCAddr
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = defaultMaxInFlight
	}
	setDur(&c.DialTimeout, p.dial)
	setDur(&c.HandshakeTimeout, p.handshake)
	setDur(&c.KeepAlive, p.keepAlive)
	setDur(&c.IdleTimeout, p.idle)
	setDur(&c.DrainTimeout, p.drain)
	setDur(&c.BackoffMin, p.backoffMin)
	setDur(&c.BackoffMax, p.backoffMax)
	setDur(&c.PrimaryInterval, p.primaryPoll)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.IdleTimeout <= c.KeepAlive {
		return c, p, fmt.Errorf("transport: IdleTimeout (%v) must exceed KeepAlive (%v)", c.IdleTimeout, c.KeepAlive)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, p, nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func defaultNodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return host + "-" + hex.EncodeToString(b[:])
}

// deriveKey stretches the secret into a 32-byte key for one purpose, so the
// gossip key and the link key are independent and neither is the secret
// itself. The label is mixed in so that two clusters sharing a secret by
// accident still cannot talk.
func deriveKey(secret []byte, label, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "flypg/"+purpose+"/v1\x00"+label, 32)
	if err != nil {
		panic("transport: hkdf: " + err.Error()) // only for lengths > 255*32
	}
	return k
}
