package transport

import (
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the newest link protocol this package speaks, and
// MinProtocolVersion the oldest. Both are advertised in Meta and negotiated
// in the handshake: two nodes link with the highest version both speak.
//
// Compatibility rule: a release speaks the version of the release before it
// too, so a rolling upgrade (or rollback) of one release at a time always
// has old and new nodes linked. A member with no common version is not
// routable; requests skip it as not sent.
//
// Versions: 1 was the plaintext HMAC handshake (no longer spoken). 2 is TLS
// 1.3 with SPAKE2 authentication and single-frame requests and responses. 3
// adds requests in parts, streamed responses and flow control.
const (
	ProtocolVersion    = 3
	MinProtocolVersion = 2
)

// Meta is what each node advertises through memberlist.
type Meta struct {
	Region  string `msgpack:"r"`
	RPCAddr string `msgpack:"a"`
	// Version is the newest link protocol version the node speaks, and
	// MinVersion the oldest (0 from nodes that predate it: Version only).
	Version    int `msgpack:"v"`
	MinVersion int `msgpack:"vm,omitempty"`
	// Primary reports that the node's local database is the primary (not in
	// recovery). Superseded by Databases.
	Primary bool `msgpack:"p"`
	// Databases lists the databases the node serves.
	Databases []DatabaseMeta `msgpack:"d,omitempty"`
}

// DatabaseMeta identifies one database a node serves and says whether the
// node's copy of it is writable.
type DatabaseMeta struct {
	// SysID is the PostgreSQL cluster's system identifier, Name the
	// database's name: together they identify the database everywhere.
	SysID uint64 `msgpack:"s"`
	Name  string `msgpack:"n"`
	// Primary reports that this node's local copy is the primary.
	Primary bool `msgpack:"p,omitempty"`
}

// Member is a member of the cluster, as this node sees it.
type Member struct {
	Name string
	Meta
	// Addr is the member's gossip address.
	Addr string
	// RTT is the round-trip time to the member: measured on our link to it
	// if there is one, else by memberlist's probes; 0 if unknown (and for
	// the local node).
	RTT time.Duration
	// Alive is false for a member that membership declared dead (or that
	// left) while our link to it is still healthy: requests pinned to it
	// by name still go there; selectors see it ranked last.
	Alive bool
	// LinkVersion is the link protocol version we speak with the member:
	// the newest both speak, 0 if none (the member cannot be called).
	LinkVersion int
}

// Serves reports whether the member serves the database, and whether its
// copy is the primary.
func (m Member) Serves(sysID uint64, name string) (serves, primary bool) {
	for _, d := range m.Databases {
		if d.SysID == sysID && d.Name == name {
			return true, d.Primary
		}
	}
	return false, false
}

// maxMetaNesting bounds how deep a member's meta may nest; ours nests 3.
const maxMetaNesting = 4

// encode returns the wire form, refusing anything memberlist would panic on.
func (m Meta) encode() ([]byte, error) {
	b, err := msgpack.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("transport: encode meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("transport: node meta is %d bytes, over memberlist's %d-byte limit (region, address or database names too long, or too many databases: %d)",
			len(b), memberlist.MetaMaxSize, len(m.Databases))
	}
	return b, nil
}

// decodeMeta decodes a member's meta. The bytes come from authenticated
// gossip, but a buggy or compromised node must not be able to make us
// allocate more than they hold, so every declared length is checked first.
func decodeMeta(b []byte) (Meta, error) {
	if len(b) > memberlist.MetaMaxSize {
		return Meta{}, fmt.Errorf("transport: decode meta: %d bytes, over the %d-byte limit", len(b), memberlist.MetaMaxSize)
	}
	if err := checkMsgpack(b, maxMetaNesting); err != nil {
		return Meta{}, fmt.Errorf("transport: decode meta: %w", err)
	}
	var m Meta
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("transport: decode meta: %w", err)
	}
	return m, nil
}

// minVersion is the oldest version the member speaks.
func (m Meta) minVersion() int {
	if m.MinVersion > 0 {
		return m.MinVersion
	}
	return m.Version
}

// commonVersion is the version we would link with, 0 if none.
func (m Meta) commonVersion(ourMin, ourMax int) int {
	return negotiate(m.minVersion(), m.Version, ourMin, ourMax)
}

func (m Meta) clone() Meta {
	m.Databases = slices.Clone(m.Databases)
	return m
}
