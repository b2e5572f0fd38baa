package faults

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// gossipProxy stands in front of one node's membership port, UDP and TCP
// on one port number, as memberlist wants: the node advertises the proxy
// (Config.AdvertiseGossipAddr), so every probe, gossip packet and push/pull
// stream to it passes here, and Cut drops them all while the write link,
// elsewhere, stays up — gossip loss with a healthy network.
//
// UDP is relayed one way only: memberlist answers a probe at the address
// the probe names (the sender's advertised one, its own proxy), not at the
// packet's source.
type gossipProxy struct {
	t        *testing.T
	addr     string // what the node advertises
	upstream string // the node's real gossip address

	mu    sync.Mutex
	cut   bool
	udp   *net.UDPConn
	tcp   net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newGossipProxy listens on a port free for both UDP and TCP and relays to
// upstream, a node's gossip address (which need not be bound yet).
func newGossipProxy(t *testing.T, upstream string) *gossipProxy {
	t.Helper()
	u, l := listenBoth(t)
	p := &gossipProxy{t: t, conns: map[net.Conn]struct{}{}, udp: u, tcp: l, addr: l.Addr().String(), upstream: upstream}
	t.Cleanup(p.close)
	p.wg.Add(2)
	go p.relayUDP()
	go p.accept()
	return p
}

// listenBoth listens on one port number for UDP and TCP on 127.0.0.1.
func listenBoth(t *testing.T) (*net.UDPConn, net.Listener) {
	t.Helper()
	for range 50 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return u, l
		}
		u.Close()
	}
	t.Fatal("no port free for both UDP and TCP")
	return nil, nil
}

// freeGossipAddr is an address free (as far as anyone can know) for a
// node's membership, UDP and TCP.
func freeGossipAddr(t *testing.T) string {
	u, l := listenBoth(t)
	addr := l.Addr().String()
	u.Close()
	l.Close()
	return addr
}

func (p *gossipProxy) relayUDP() {
	defer p.wg.Done()
	up, err := net.ResolveUDPAddr("udp", p.upstream)
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, _, err := p.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if !cut {
			_, _ = p.udp.WriteToUDP(buf[:n], up)
		}
	}
}

func (p *gossipProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.wg.Add(1)
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *gossipProxy) pipe(c net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.upstream)
	if err == nil {
		p.mu.Lock()
		if p.cut {
			up.Close()
			up = nil
		} else {
			p.conns[up] = struct{}{}
		}
		p.mu.Unlock()
	}
	if up != nil {
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(up, c)
			up.Close()
			close(done)
		}()
		_, _ = io.Copy(c, up)
		c.Close()
		<-done
	}
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// setCut drops (true) or passes (false) everything from now on; cutting
// also closes the streams in progress.
func (p *gossipProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *gossipProxy) close() {
	p.setCut(true)
	p.udp.Close()
	p.tcp.Close()
	p.wg.Wait()
}
