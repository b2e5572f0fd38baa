package transport

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// membership mirrors memberlist's view with decoded metadata. memberlist
// calls it (as Delegate, EventDelegate and PingDelegate) with its own locks
// held, so it never calls back into memberlist and hands departures to
// onLeave only after releasing its own lock.
type membership struct {
	self    string
	log     *slog.Logger
	onLeave func(name string) // a member left or was declared dead
	onMove  func(name string) // a member changed its link address
	onJoin  func(name string) // a member joined (perhaps again)

	mu      sync.Mutex
	meta    Meta   // our own
	encoded []byte // our own, as advertised
	members map[string]*memberState
	changed chan struct{} // closed and replaced on every change
}

type memberState struct {
	Member
	probeRTT time.Duration // from memberlist's probes
}

func newMembership(self string, meta Meta, log *slog.Logger, onLeave, onMove, onJoin func(string)) (*membership, error) {
	enc, err := meta.encode()
	if err != nil {
		return nil, err
	}
	return &membership{
		self: self, log: log, onLeave: onLeave, onMove: onMove, onJoin: onJoin,
		meta: meta, encoded: enc,
		members: make(map[string]*memberState),
		changed: make(chan struct{}),
	}, nil
}

// setMeta updates our meta with change; it reports whether anything
// changed, and refuses a meta that would not fit memberlist's limit.
func (m *membership) setMeta(change func(*Meta)) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	meta := m.meta.clone()
	change(&meta)
	enc, err := meta.encode()
	if err != nil {
		return false, err
	}
	if bytes.Equal(enc, m.encoded) {
		return false, nil
	}
	m.meta, m.encoded = meta, enc
	m.notifyLocked()
	return true, nil
}

func (m *membership) localMeta() Meta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meta.clone()
}

func (m *membership) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// changes returns a channel closed at the next membership change.
func (m *membership) changes() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// list returns every member, self included with its current meta.
func (m *membership) list() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.members))
	for _, s := range m.members {
		mem := s.Member
		mem.Alive = true
		if mem.Name == m.self {
			mem.Meta = m.meta
		} else {
			mem.RTT = s.probeRTT
		}
		mem.Meta = mem.Meta.clone()
		out = append(out, mem)
	}
	return out
}

func (m *membership) get(name string) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.members[name]
	if !ok {
		return Member{}, false
	}
	mem := s.Member
	mem.RTT, mem.Alive = s.probeRTT, true
	if name == m.self {
		mem.Meta, mem.RTT = m.meta, 0
	}
	mem.Meta = mem.Meta.clone()
	return mem, true
}

// NodeMeta implements memberlist.Delegate.
func (m *membership) NodeMeta(limit int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.encoded) > limit {
		return nil // checked at Start; unreachable unless memberlist lowers its limit
	}
	return m.encoded
}

// NotifyMsg, GetBroadcasts, LocalState and MergeRemoteState implement
// memberlist.Delegate; everything we share travels in the meta.
func (m *membership) NotifyMsg([]byte)                           {}
func (m *membership) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (m *membership) LocalState(join bool) []byte                { return nil }
func (m *membership) MergeRemoteState(buf []byte, join bool)     {}

// NotifyJoin implements memberlist.EventDelegate.
func (m *membership) NotifyJoin(n *memberlist.Node) { m.upsert(n) }

// NotifyUpdate implements memberlist.EventDelegate.
func (m *membership) NotifyUpdate(n *memberlist.Node) { m.upsert(n) }

// NotifyLeave implements memberlist.EventDelegate. memberlist calls it for a
// graceful leave and for a node declared dead alike.
func (m *membership) NotifyLeave(n *memberlist.Node) {
	m.mu.Lock()
	_, ok := m.members[n.Name]
	delete(m.members, n.Name)
	if ok {
		m.notifyLocked()
	}
	m.mu.Unlock()
	if ok && n.Name != m.self {
		m.log.Info("transport: member left or declared dead", "node", n.Name, "state", n.State)
		m.onLeave(n.Name)
	}
}

func (m *membership) upsert(n *memberlist.Node) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		m.log.Warn("transport: ignoring member with unreadable meta", "node", n.Name, "err", err)
		return
	}
	addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	m.mu.Lock()
	old, existed := m.members[n.Name]
	st := &memberState{Member: Member{Name: n.Name, Meta: meta, Addr: addr}}
	if existed {
		st.probeRTT = old.probeRTT
	}
	m.members[n.Name] = st
	m.notifyLocked()
	m.mu.Unlock()
	if n.Name == m.self {
		return
	}
	if !existed {
		m.log.Debug("transport: member joined", "node", n.Name, "region", meta.Region, "rpc", meta.RPCAddr, "primary", meta.Primary)
		m.onJoin(n.Name)
	} else if old.RPCAddr != meta.RPCAddr {
		// Our link, if any, goes to the old address: drop it.
		m.onMove(n.Name)
	}
}

// AckPayload implements memberlist.PingDelegate.
func (m *membership) AckPayload() []byte { return nil }

// NotifyPingComplete implements memberlist.PingDelegate: probe RTTs rank
// members we have no link to yet.
func (m *membership) NotifyPingComplete(n *memberlist.Node, rtt time.Duration, _ []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.members[n.Name]; ok {
		if s.probeRTT == 0 {
			s.probeRTT = rtt
		} else {
			s.probeRTT = s.probeRTT - s.probeRTT/4 + rtt/4
		}
	}
}

// memberlistConfig builds memberlist's configuration for this node. Gossip
// is encrypted with the key derived from Secret; keys derived from
// PreviousSecrets are in the keyring too, to read peers that still use
// them.
func (t *Transport) memberlistConfig(p profile, nt memberlist.Transport, advertise net.IP, port int) (*memberlist.Config, error) {
	c := p.memberlist()
	c.Name = t.name
	c.Transport = nt
	c.AdvertiseAddr, c.AdvertisePort = advertise.String(), port
	c.Label = t.cfg.Label
	var others [][]byte
	for _, s := range t.cfg.PreviousSecrets {
		others = append(others, deriveKey(s, t.cfg.Label, "gossip"))
	}
	kr, err := memberlist.NewKeyring(others, deriveKey(t.cfg.Secret, t.cfg.Label, "gossip"))
	if err != nil {
		return nil, fmt.Errorf("transport: gossip keyring: %w", err)
	}
	c.Keyring = kr
	c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
	c.Delegate = t.mem
	c.Events = t.mem
	c.Ping = t.mem
	c.Logger = memberlistLogger(t.log)
	c.LogOutput = nil
	return c, nil
}

// newNetTransport binds memberlist's TCP+UDP listeners. With port 0 the
// kernel picks a TCP port that may be taken for UDP, so it retries, as
// memberlist does for its own default transport.
func newNetTransport(bind string, logger *log.Logger) (*memberlist.NetTransport, error) {
	host, portStr, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		host = "::"
	}
	tries := 1
	if port == 0 {
		tries = 10
	}
	for {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: logger})
		tries--
		if err == nil || tries == 0 || !strings.Contains(err.Error(), "address already in use") {
			return nt, err
		}
	}
}

// memberlistLogger routes memberlist's "[LEVEL] memberlist: msg" lines to
// slog at the matching level.
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

var mlLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for _, l := range mlLevels {
		if rest, ok := strings.CutPrefix(msg, l.prefix); ok {
			msg, level = strings.TrimSpace(rest), l.level
			break
		}
	}
	ctx := context.Background()
	if w.l.Enabled(ctx, level) {
		w.l.Log(ctx, level, strings.TrimPrefix(msg, "memberlist: "), "component", "memberlist")
	}
	return len(p), nil
}
