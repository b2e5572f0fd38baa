package transport

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// hookedTransport wraps memberlist's network transport so that tests can
// watch gossip and cut it while the link stays up (a gossip partition, as
// when UDP is lost but TCP is fine). Only tests install hooks; without them
// Start hands memberlist the plain transport.
type hookedTransport struct {
	*memberlist.NetTransport
	h       *hooks
	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{} // closed at Shutdown: drop everything
	done    chan struct{} // closed once the inner transport shut down
	once    sync.Once
	wg      sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*hookedTransport)(nil)

func newHookedTransport(nt *memberlist.NetTransport, h *hooks) *hookedTransport {
	t := &hookedTransport{NetTransport: nt, h: h, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), stop: make(chan struct{}), done: make(chan struct{})}
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
				select {
				case t.streams <- c:
				case <-t.stop:
					_ = c.Close()
				}
			case <-t.done:
				return
			}
		}
	}()
	return t
}

var errGossipDropped = errors.New("test: gossip to this address is cut")

func (t *hookedTransport) dropped(addr string) bool {
	return t.h.dropGossip != nil && t.h.dropGossip(addr)
}

func (t *hookedTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *hookedTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *hookedTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *hookedTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.h.sawGossip != nil {
		t.h.sawGossip(b)
	}
	if t.dropped(a.Addr) {
		return time.Now(), nil // lost on the way, as UDP is
	}
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *hookedTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *hookedTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.dropped(a.Addr) {
		return nil, errGossipDropped
	}
	return t.NetTransport.DialAddressTimeout(a, timeout)
}

func (t *hookedTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.stop)
		err = t.NetTransport.Shutdown()
		close(t.done)
		t.wg.Wait()
	})
	return err
}
