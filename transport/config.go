package transport

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	// Default "[::]:7946" (every address, IPv6 and IPv4; "0.0.0.0:7946"
	// where the host has no IPv6); port 0 picks a port free for both.
	GossipAddr string
	// AdvertiseGossipAddr is the gossip address other nodes reach this one
	// at, host or host:port (the bound port when absent). Default: the
	// bound IP when it is a specific one; for an unspecified bind
	// ("[::]", "0.0.0.0"): $FLY_PRIVATE_IP, else what fly-local-6pn
	// resolves to, else the first global unicast address of an up
	// interface — IPv6 first when bound to "::", IPv4 first when bound to
	// "0.0.0.0".
	AdvertiseGossipAddr string
	// RPCAddr is the link's listen host:port. Default "[::]:7947" (or
	// "0.0.0.0:7947" without IPv6); port 0 picks a free port.
	RPCAddr string
	// AdvertiseRPCAddr is the link address other nodes dial, when it differs
	// from the listen address (NAT, proxies). Default: RPCAddr's bound
	// address, with an unspecified host replaced by the advertised gossip
	// IP.
	AdvertiseRPCAddr string

	// Join lists peers' gossip addresses (host:port). Joining is retried in
	// the background, with backoff, until one answers — and again whenever
	// the node finds itself alone.
	Join []string
	// JoinDNS is a name resolved (AAAA and A) to find peers, as on Fly.io:
	// "<FLY_APP_NAME>.internal". Optional "host:port"; without a port the
	// local gossip port is assumed.
	JoinDNS string

	// Secret is the cluster secret: at least 32 random bytes, or hex or
	// base64 text of them (see ValidateSecret). Required. The gossip key
	// and the link's SPAKE2 password are derived from it, so nodes with
	// different secrets never talk.
	Secret []byte
	// PreviousSecrets are further secrets this node accepts from peers,
	// for rotating the secret without downtime (see docs/security.md): gossip
	// encrypted with any of them is read, and a peer proving any of them
	// may link. The node itself gossips with Secret and dials with Secret
	// first. At most 3.
	PreviousSecrets [][]byte
	// InsecureSkipSecretCheck lets Start accept a secret ValidateSecret
	// refuses. For tests and labs on one machine only.
	InsecureSkipSecretCheck bool
	// Label is the memberlist cluster label, sent in cleartext with every
	// gossip message: nodes with different labels never merge. The root
	// package sets it from the app's name (FLY_APP_NAME). Never derive it
	// from the secret. Default "flypg".
	Label string
	// Profile picks failure-detection timings: "wan" (default; memberlist's
	// DefaultWANConfig, for nodes spread over regions), "lan"
	// (DefaultLANConfig) or "local" (fast probing, for tests on one host: a
	// dead node is declared dead within about 1–2 s).
	Profile string
	// TLS, when set, replaces the link's TLS configuration: by default each
	// node makes a fresh self-signed certificate at start and peers do not
	// verify it, because the SPAKE2 authentication is bound to the TLS
	// session instead. TLS 1.3 is required either way.
	TLS *tls.Config
	// InsecurePlaintext turns TLS off on the link: the handshake still
	// authenticates both ends, but the traffic after it is readable and
	// forgeable by anyone on path. For benchmarks and labs only.
	InsecurePlaintext bool

	// MaxFrameSize caps one frame on the link. Larger requests and
	// responses travel in parts of at most ChunkSize. Default 4 MiB.
	MaxFrameSize int
	// ChunkSize is the largest part a request or streamed response is cut
	// into. Default 256 KiB (and never above MaxFrameSize minus the
	// envelope).
	ChunkSize int
	// MaxRequestSize caps a request body, however many frames it takes. A
	// larger request fails before anything is sent (ErrNotSent and
	// ErrFrameTooLarge). Default 64 MiB.
	MaxRequestSize int
	// MaxResponseSize caps the response Call assembles in memory; Open
	// streams responses of any size. Default 64 MiB.
	MaxResponseSize int
	// StreamWindow is the flow-control window of each response stream: how
	// many bytes a server may send ahead of what the caller has consumed.
	// It bounds the caller's buffered bytes per stream; throughput over a
	// long link is about StreamWindow per round trip. Default 1 MiB.
	StreamWindow int
	// MaxInFlight caps the requests a server runs at once for one inbound
	// link; excess requests are refused at once (ErrNotSent). Default 1024.
	MaxInFlight int
	// MaxInFlightBytes caps the request bytes a server holds at once, over
	// all links: bodies being received in parts and bodies of running
	// handlers. A request that does not fit is refused (ErrNotSent), and
	// so is one that would take a calling node, over all its links, past
	// half of it. Default 256 MiB.
	MaxInFlightBytes int64
	// MaxLinkBuffer caps the bytes queued for writing on one link; senders
	// wait beyond it. Default 8 MiB, and at least 2 × MaxFrameSize.
	MaxLinkBuffer int
	// MaxPreAuth caps inbound connections that have not completed the
	// handshake, and MaxPreAuthPerSource those from one IP address. When a
	// cap is reached an existing connection is closed rather than the new
	// one refused: the least advanced (nothing received, then TLS not
	// done), from the network holding the most (an IPv6 /64 is one
	// network) for the global cap, the oldest. Defaults 128 and 16.
	MaxPreAuth, MaxPreAuthPerSource int

	// DialTimeout bounds a TCP dial. Profile default.
	DialTimeout time.Duration
	// HandshakeTimeout bounds TLS plus authentication, on both sides: the
	// time an unauthenticated connection may hold a slot. Profile default.
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
	// Databases is the initial Meta.Databases; SetDatabases changes it.
	Databases []DatabaseMeta

	// MinProtocolVersion and MaxProtocolVersion narrow the link protocol
	// versions this node speaks, for tests and labs that rehearse a
	// rolling upgrade. Defaults MinProtocolVersion and ProtocolVersion.
	MinProtocolVersion, MaxProtocolVersion int

	// Logger receives the transport's logs, memberlist's included. Default
	// slog.Default().
	Logger *slog.Logger

	hooks *hooks // tests only
}

// hooks let tests see and steer what the Transport does to the outside
// world. Every field is optional.
type hooks struct {
	// dropGossip drops gossip packets and streams to and from an address
	// (host:port) while it returns true.
	dropGossip func(addr string) bool
	// sawGossip sees every outgoing gossip packet as memberlist sends it.
	sawGossip func(b []byte)
	getenv    func(string) string
	lookupIP  func(ctx context.Context, host string) ([]net.IP, error)
	ifaceAddr func() ([]net.Addr, error)
	rng       io.Reader // handshake randomness
}

// Profiles.
const (
	ProfileWAN   = "wan"
	ProfileLAN   = "lan"
	ProfileLocal = "local"
)

// DefaultMaxFrameSize is Config.MaxFrameSize's default: the largest frame a
// link carries. Bodies larger than a frame travel in parts.
const DefaultMaxFrameSize = 4 << 20

// Defaults of the Config fields that bound resources.
const (
	DefaultChunkSize        = 256 << 10
	DefaultMaxRequestSize   = 64 << 20
	DefaultMaxResponseSize  = 64 << 20
	DefaultStreamWindow     = 1 << 20
	DefaultMaxInFlight      = 1024
	DefaultMaxInFlightBytes = 256 << 20
	DefaultMaxLinkBuffer    = 8 << 20
	DefaultMaxPreAuth       = 128
	DefaultMaxPreAuthSource = 16
)

const (
	defaultRegion     = "local"
	defaultLabel      = "flypg"
	defaultGossipPort = "7946"
	defaultRPCPort    = "7947"

	// handshakeMaxFrame caps frames before authentication: the handshake's
	// frames are small, and an unauthenticated peer must not make us
	// allocate MaxFrameSize.
	handshakeMaxFrame = 1024
	// minChunk keeps ChunkSize from being set so small that a frame's
	// overhead dominates.
	minChunk = 4 << 10
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
		dial:       5 * time.Second, handshake: 5 * time.Second,
		keepAlive: 10 * time.Second, idle: 35 * time.Second, drain: 10 * time.Second,
		backoffMin: 200 * time.Millisecond, backoffMax: 30 * time.Second,
		primaryPoll: 2 * time.Second, leave: 5 * time.Second, rejoinCheck: 30 * time.Second,
	},
	ProfileLAN: {
		memberlist: memberlist.DefaultLANConfig,
		dial:       2 * time.Second, handshake: 3 * time.Second,
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
		return c, p, errors.New("transport: Config.Secret is required: " + secretHowTo)
	}
	if len(c.PreviousSecrets) > maxSecrets-1 {
		return c, p, fmt.Errorf("transport: at most %d PreviousSecrets, got %d", maxSecrets-1, len(c.PreviousSecrets))
	}
	if !c.InsecureSkipSecretCheck {
		if err := ValidateSecret(c.Secret); err != nil {
			return c, p, fmt.Errorf("transport: Config.Secret: %w", err)
		}
		for i, s := range c.PreviousSecrets {
			if err := ValidateSecret(s); err != nil {
				return c, p, fmt.Errorf("transport: Config.PreviousSecrets[%d]: %w", i, err)
			}
		}
	}
	for i, s := range c.PreviousSecrets {
		if len(s) == 0 {
			return c, p, fmt.Errorf("transport: Config.PreviousSecrets[%d] is empty", i)
		}
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
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxFrameSize < 2*handshakeMaxFrame {
		return c, p, fmt.Errorf("transport: MaxFrameSize %d is below the minimum %d", c.MaxFrameSize, 2*handshakeMaxFrame)
	}
	setInt(&c.ChunkSize, DefaultChunkSize)
	c.ChunkSize = max(min(c.ChunkSize, c.MaxFrameSize-frameOverhead), min(minChunk, c.MaxFrameSize/4))
	setInt(&c.MaxRequestSize, DefaultMaxRequestSize)
	setInt(&c.MaxResponseSize, DefaultMaxResponseSize)
	setInt(&c.StreamWindow, DefaultStreamWindow)
	c.StreamWindow = max(c.StreamWindow, c.ChunkSize, minChunk)
	setInt(&c.MaxInFlight, DefaultMaxInFlight)
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	setInt(&c.MaxLinkBuffer, DefaultMaxLinkBuffer)
	c.MaxLinkBuffer = max(c.MaxLinkBuffer, 2*c.MaxFrameSize)
	setInt(&c.MaxPreAuth, DefaultMaxPreAuth)
	setInt(&c.MaxPreAuthPerSource, DefaultMaxPreAuthSource)
	c.MaxPreAuthPerSource = min(c.MaxPreAuthPerSource, c.MaxPreAuth)
	setInt(&c.MinProtocolVersion, MinProtocolVersion)
	setInt(&c.MaxProtocolVersion, ProtocolVersion)
	if c.MinProtocolVersion < MinProtocolVersion || c.MaxProtocolVersion > ProtocolVersion || c.MinProtocolVersion > c.MaxProtocolVersion {
		return c, p, fmt.Errorf("transport: protocol versions %d–%d: this release speaks %d–%d", c.MinProtocolVersion, c.MaxProtocolVersion, MinProtocolVersion, ProtocolVersion)
	}
	if c.hooks == nil {
		c.hooks = &hooks{}
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

func setInt(n *int, def int) {
	if *n <= 0 {
		*n = def
	}
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
// gossip key is independent of the link's SPAKE2 password and neither is the
// secret itself. The label is mixed in so that two clusters sharing a secret
// by accident still cannot talk.
func deriveKey(secret []byte, label, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "flypg/"+purpose+"/v1\x00"+label, 32)
	if err != nil {
		panic("transport: hkdf: " + err.Error()) // only for lengths > 255*32
	}
	return k
}
