package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// peer is our outbound side towards one member: its link, when up, and the
// dial and backoff state for when it is not.
type peer struct {
	t    *Transport
	name string
	addr string // the member's RPC address when the peer was made

	mu       sync.Mutex
	meta     Meta // as last seen in membership
	link     *clientLink
	dialing  chan struct{} // non-nil while a dial runs; closed when it ends
	lastErr  error
	failures int
	retryAt  time.Time   // no dial before this: fail fast instead
	wanted   bool        // a link was up and died unasked: keep redialling
	redial   *time.Timer // pending background redial
	closed   bool
	// gone: membership no longer lists the member (declared dead, or left).
	// A live link is kept, and used for requests pinned to the node, until
	// it fails by itself; it is not redialled.
	gone bool
	// secret is the index of our secret to try first: the one that worked
	// last, so that during a rotation the right one is found once.
	secret int
}

// get returns a live link, dialling if needed (never for a gone member).
// Errors wrap ErrNotSent.
func (p *peer) get(ctx context.Context) (*clientLink, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("%w: node %s left the cluster", ErrNotSent, p.name)
		}
		if l := p.link; l != nil && l.usable() {
			p.mu.Unlock()
			return l, nil
		}
		if p.gone {
			p.mu.Unlock()
			return nil, fmt.Errorf("%w: node %s is not a live member and our link to it is down", ErrNotSent, p.name)
		}
		if p.dialing == nil {
			if wait := time.Until(p.retryAt); wait > 0 {
				err := p.lastErr
				p.mu.Unlock()
				return nil, fmt.Errorf("%w: node %s unreachable (next attempt in %v): %w", ErrNotSent, p.name, wait.Round(time.Millisecond), err)
			}
			p.startDialLocked()
		}
		ch := p.dialing
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: connecting to %s: %w", ErrNotSent, p.name, ctx.Err())
		}
	}
}

// liveLink returns the current link if it is usable, without dialling.
func (p *peer) liveLink() *clientLink {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.link; l != nil && !p.closed && l.usable() {
		return l
	}
	return nil
}

// startDialLocked starts a dial owned by the peer, not by the caller who
// asked for it, so that a caller giving up does not waste a half-made link
// that the next caller would want.
func (p *peer) startDialLocked() {
	p.dialing = make(chan struct{})
	p.t.wg.Add(1)
	go p.dial(p.dialing, p.secret)
}

func (p *peer) dial(done chan struct{}, secret int) {
	defer p.t.wg.Done()
	l, err := p.t.dialLink(p, secret)
	p.mu.Lock()
	defer close(done)
	p.dialing = nil
	if err == nil && (p.closed || p.gone) {
		p.mu.Unlock()
		l.fail(fmt.Errorf("%w: node %s left the cluster", ErrNotSent, p.name))
		return
	}
	defer p.mu.Unlock()
	if err != nil {
		p.failures++
		p.lastErr = err
		p.retryAt = time.Now().Add(p.t.backoff(p.failures))
		p.t.log.Debug("transport: dial failed", "node", p.name, "addr", p.addr, "failures", p.failures, "err", err)
		if p.wanted {
			p.scheduleRedialLocked()
		}
		return
	}
	p.t.log.Debug("transport: link up", "node", p.name, "addr", p.addr, "rtt", l.RTT(), "version", l.sess.version)
	p.link, p.failures, p.retryAt, p.lastErr, p.wanted = l, 0, time.Time{}, nil, true
	p.secret = l.sess.secret
}

// linkDown is called by a link that died. A link that died unasked is
// redialled in the background so the next call finds it warm; a gone
// member's peer is forgotten.
func (p *peer) linkDown(l *clientLink, goaway bool) {
	p.mu.Lock()
	if p.link != l && p.link != nil {
		p.mu.Unlock()
		return // an old link; a newer one is up
	}
	p.link = nil
	if goaway {
		p.wanted = false
	}
	forget := p.gone && p.dialing == nil
	if !p.closed && p.wanted && !p.gone {
		p.scheduleRedialLocked()
	}
	p.mu.Unlock()
	if forget {
		p.t.forgetPeer(p)
	}
}

func (p *peer) scheduleRedialLocked() {
	if p.redial != nil {
		return
	}
	p.redial = time.AfterFunc(p.t.backoff(p.failures+1), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.redial = nil
		if p.closed || p.gone || p.link != nil || p.dialing != nil {
			return
		}
		p.retryAt = time.Time{}
		p.startDialLocked()
	})
}

// setGone records that membership lost (or found again) the member. It
// reports whether the peer has no link left and can be forgotten.
func (p *peer) setGone(gone bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gone = gone
	if gone {
		p.wanted = false
		if p.redial != nil {
			p.redial.Stop()
			p.redial = nil
		}
	}
	return gone && p.link == nil && p.dialing == nil
}

// close ends the peer: no more dials or new requests. Its link is cut at
// once, or with drain set, when the requests in flight on it are answered.
func (p *peer) close(err error, drain bool) {
	p.mu.Lock()
	p.closed = true
	if p.redial != nil {
		p.redial.Stop()
		p.redial = nil
	}
	l := p.link
	p.link = nil
	p.mu.Unlock()
	switch {
	case l == nil:
	case drain:
		l.retire(err)
	default:
		l.fail(err)
	}
}

// rtt is the link's RTT, 0 without a link.
func (p *peer) rtt() time.Duration {
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l == nil {
		return 0
	}
	return l.RTT()
}

// backoff is the exponential, jittered delay before attempt n+1.
func (t *Transport) backoff(failures int) time.Duration {
	d := t.cfg.BackoffMin
	for i := 1; i < failures && d < t.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, t.cfg.BackoffMax)
	// Full jitter over the upper half: spreads reconnect storms yet keeps
	// the delay near its nominal value.
	return d/2 + rand.N(d/2+1)
}

// dialLink connects and authenticates to p's node, trying our secrets
// from first, one per connection, while the server refuses them: so a node
// that already rotated to a new secret still links with one that has not.
func (t *Transport) dialLink(p *peer, first int) (*clientLink, error) {
	var errs []error
	for i := range t.secrets {
		l, err := t.dialOnce(p, (first+i)%len(t.secrets))
		if err == nil {
			return l, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, ErrAuth) || t.ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

func (t *Transport) dialOnce(p *peer, secret int) (*clientLink, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	// Closing the connection is the only way to interrupt a handshake when
	// the transport shuts down mid-way.
	stop := context.AfterFunc(t.ctx, func() { _ = conn.Close() })
	defer stop()
	l, err := t.clientHandshake(conn, p, secret)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%s: %w", p.addr, err)
	}
	if !t.trackLink(l, true) {
		_ = conn.Close()
		return nil, ErrClosed
	}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		l.writeLoop(l.ping, t.cfg.KeepAlive)
	}()
	go func() {
		defer t.wg.Done()
		l.fail(l.readLoop())
		t.trackLink(l, false)
	}()
	return l, nil
}

func (t *Transport) clientHandshake(conn net.Conn, p *peer, secret int) (*clientLink, error) {
	if err := conn.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	var binding []byte
	if !t.cfg.InsecurePlaintext {
		cfg := t.tlsClient
		if t.cfg.TLS != nil && cfg.ServerName == "" {
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(p.addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		var err error
		if binding, err = tlsBinding(tc); err != nil {
			return nil, err
		}
		conn = tc
	}
	fr := newFrameReader(conn, handshakeMaxFrame)
	hp := t.handshakeParams(binding)
	sess, err := clientHandshake(conn, fr, &hp, secret, p.name)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	fr.max = t.cfg.MaxFrameSize
	fr.keep = max(keepReadBuf, t.cfg.ChunkSize+frameOverhead)
	l := &clientLink{
		link:    newLink(conn, fr, t.cfg.IdleTimeout, sess, t.cfg.MaxLinkBuffer),
		peer:    p,
		start:   time.Now(),
		pending: make(map[uint64]*call),
	}
	l.rtt.Store(int64(sess.rtt))
	return l, nil
}
