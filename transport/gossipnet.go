package transport

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Gossip streams (memberlist's TCP push/pull, joins and fallback pings)
// reach memberlist before anything is authenticated: it reads a whole
// encrypted message — up to 20 MiB, by its own limit — before it can tell
// whether the sender knows the key. So the gossip port gets the same kind
// of pre-auth limits as the link's.
const (
	// maxGossipStreamBytes bounds what one gossip stream may send us. A
	// push/pull carries each member's state (name, address, meta of at
	// most 512 bytes): 512 KiB holds several hundred members at the
	// largest meta, a thousand or more at a typical one.
	maxGossipStreamBytes = 512 << 10
	// maxGossipStreams and maxGossipStreamsPerSource cap the inbound gossip
	// streams being read at once, evicting as preAuth does. A node serves
	// a stream or two at a time (push/pull every 30 s per member, joins),
	// but nodes on one host or behind one NAT share an address and may
	// join at once: the per-address cap is the link's default. The caps
	// bound what an unauthenticated flood can make a node buffer to about
	// twice maxGossipStreamBytes per stream: 32 MiB in all, 16 from one
	// address.
	maxGossipStreams          = 32
	maxGossipStreamsPerSource = 16
)

var errGossipStreamTooLarge = fmt.Errorf("transport: gossip stream longer than %d bytes", maxGossipStreamBytes)

// gossipTransport wraps memberlist's network transport: it bounds inbound
// streams (above), and lets tests watch gossip and cut it while the link
// stays up (a gossip partition, as when UDP is lost but TCP is fine).
type gossipTransport struct {
	*memberlist.NetTransport
	h       *hooks
	guard   *preAuth
	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{} // closed at Shutdown: drop everything
	done    chan struct{} // closed once the inner transport shut down
	once    sync.Once
	wg      sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*gossipTransport)(nil)

func newGossipTransport(nt *memberlist.NetTransport, h *hooks) *gossipTransport {
	t := &gossipTransport{NetTransport: nt, h: h, guard: newPreAuth(maxGossipStreamsPerSource, maxGossipStreams),
		packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), stop: make(chan struct{}), done: make(chan struct{})}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		// Keep reading until the inner transport is down: its listeners
		// block on an unread channel, which would hang its Shutdown.
		for {
			select {
			case p := <-nt.PacketCh():
				if t.dropped(p.From.String()) {
					continue
				}
				select {
				case t.packets <- p:
				case <-t.stop:
				}
			case <-t.done:
				return
			}
		}
	}()
	go func() {
		defer t.wg.Done()
		for {
			select {
			case c := <-nt.StreamCh():
				if t.dropped(c.RemoteAddr().String()) {
					_ = c.Close()
					continue
				}
				e := t.guard.add(c)
				if e == nil { // shutting down
					_ = c.Close()
					continue
				}
				gc := &gossipConn{Conn: c, left: maxGossipStreamBytes, guard: t.guard, e: e}
				select {
				case t.streams <- gc:
				case <-t.stop:
					_ = gc.Close()
				}
			case <-t.done:
				return
			}
		}
	}()
	return t
}

var errGossipDropped = errors.New("test: gossip to this address is cut")

func (t *gossipTransport) dropped(addr string) bool {
	return t.h.dropGossip != nil && t.h.dropGossip(addr)
}

func (t *gossipTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *gossipTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *gossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.h.sawGossip != nil {
		t.h.sawGossip(b)
	}
	if t.dropped(a.Addr) {
		return time.Now(), nil // lost on the way, as UDP is
	}
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout bounds what the dialled side may send back too: a
// join address is only a DNS name or a configured list, not proof of a
// member.
func (t *gossipTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.dropped(a.Addr) {
		return nil, errGossipDropped
	}
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &gossipConn{Conn: c, left: maxGossipStreamBytes}, nil
}

func (t *gossipTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.stop)
		t.guard.closeAll()
		err = t.NetTransport.Shutdown()
		close(t.done)
		t.wg.Wait()
	})
	return err
}

// gossipConn is a gossip stream that may read at most left more bytes; an
// inbound one leaves the guard when memberlist closes it.
type gossipConn struct {
	net.Conn
	left  int
	guard *preAuth
	e     *preAuthConn // nil for streams we dialled
	seen  bool
	once  sync.Once
}

func (c *gossipConn) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, errGossipStreamTooLarge
	}
	if len(b) > c.left {
		b = b[:c.left]
	}
	n, err := c.Conn.Read(b)
	c.left -= n
	if n > 0 && !c.seen && c.e != nil {
		c.seen = true
		c.guard.advance(c.e, stageBytes)
	}
	return n, err
}

func (c *gossipConn) Close() error {
	err := c.Conn.Close()
	if c.e != nil {
		c.once.Do(func() { c.guard.done(c.e) })
	}
	return err
}
