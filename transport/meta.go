package transport

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the link protocol this package speaks. It is
// advertised in Meta and checked in the handshake.
const ProtocolVersion = 1

// Meta is what each node advertises through memberlist.
type Meta struct {
	Region  string `msgpack:"r"`
	RPCAddr string `msgpack:"a"`
	Version int    `msgpack:"v"`
	// Primary reports that the node's local database is the primary (not in
	// recovery).
	Primary bool `msgpack:"p"`
}

// Member is a live member of the cluster, as this node sees it.
type Member struct {
	Name string
	Meta
	// Addr is the member's gossip address.
	Addr string
	// RTT is the round-trip time to the member: measured on our link to it
	// if there is one, else by memberlist's probes; 0 if unknown (and for
	// the local node).
	RTT time.Duration
}

// encode returns the wire form, refusing anything memberlist would panic on.
func (m Meta) encode() ([]byte, error) {
	b, err := msgpack.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("transport: encode meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("transport: node meta is %d bytes, over memberlist's %d-byte limit (region or address too long)", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("transport: decode meta: %w", err)
	}
	return m, nil
}

// routable reports whether a member can be sent requests.
func (m Meta) routable() bool { return m.Version >= 1 && m.RPCAddr != "" }
