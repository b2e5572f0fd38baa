package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Call sends a request to the named node and returns its answer: the
// handler's return value, or if it streamed, every part concatenated (at
// most Config.MaxResponseSize bytes; Open streams any size). Errors wrap
// ErrNotSent (safe to retry), ErrUnknownOutcome (it may have run), or are a
// *RemoteError from the handler; ErrClosed after Close.
//
// A node membership declared dead while our link to it is healthy (gossip
// lost, the network fine) is still called over that link: requests pinned
// to a node, like a remote transaction's, keep working until the link
// itself fails its keep-alives.
func (t *Transport) Call(ctx context.Context, node, method string, body []byte) ([]byte, error) {
	m, done, err := t.pinned(node, body)
	if err != nil {
		return nil, err
	}
	defer done()
	return t.callMember(ctx, m, method, body)
}

// Open sends a request to the named node and returns its response as a
// Stream, once its first part (or its outcome) has arrived. Errors before
// any part arrived are returned here, as by Call; later ones by
// Stream.Recv. The caller must Close or drain the stream. ctx bounds the
// whole stream, Recv included.
func (t *Transport) Open(ctx context.Context, node, method string, body []byte) (*Stream, error) {
	m, done, err := t.pinned(node, body)
	if err != nil {
		return nil, err
	}
	defer done()
	return t.openMember(ctx, m, method, body)
}

// pinned admits a request for a named node: the member, and done to call
// when the request is over.
func (t *Transport) pinned(node string, body []byte) (Member, func(), error) {
	if !t.calling.enter() {
		return Member{}, nil, ErrClosed
	}
	if err := t.checkSize(body); err != nil {
		t.calling.leave()
		return Member{}, nil, err
	}
	m, err := t.memberByName(node)
	if err != nil {
		t.calling.leave()
		return Member{}, nil, err
	}
	return m, t.calling.leave, nil
}

// Selector picks, from the members this node knows, the candidates for a
// request, and describes its choice for error messages ("members serving
// database x as primary"). CallSelect ranks the candidates itself (see
// Rank), so a selector only filters. Members not alive in membership but
// still linked (Member.Alive false) are among those offered; they are
// ranked last.
type Selector func(members []Member) (candidates []Member, what string)

// CallSelect sends a request to one of the members sel picks: this node
// first if it qualifies, then by lowest RTT, members not alive in
// membership last. A candidate the request could not be sent to (it is
// unreachable, speaks no common protocol version, refused or declined the
// request) is skipped for the next; if ctx has a deadline, rounds repeat
// until it passes. A request that was sent is never resent elsewhere.
// Failing everywhere gives an error wrapping none (and ErrNotSent when
// nothing was sent), with what each candidate answered and what
// membership knew.
func (t *Transport) CallSelect(ctx context.Context, sel Selector, none error, method string, body []byte) (node string, resp []byte, err error) {
	err = t.selectLoop(ctx, sel, none, body, func(m Member) error {
		resp, err = t.callMember(ctx, m, method, body)
		node = m.Name
		return err
	})
	if err != nil && !errors.Is(err, none) {
		return node, resp, err
	}
	if err != nil {
		node = ""
	}
	return node, resp, err
}

// OpenSelect is CallSelect returning a Stream, as Open does. A request
// whose outcome is unknown fails with a *SentError naming the node it was
// sent to (it wraps ErrUnknownOutcome): state the request may have left
// there (a transaction it opened) can still be ended.
func (t *Transport) OpenSelect(ctx context.Context, sel Selector, none error, method string, body []byte) (*Stream, error) {
	var s *Stream
	err := t.selectLoop(ctx, sel, none, body, func(m Member) error {
		var err error
		s, err = t.openMember(ctx, m, method, body)
		if err != nil && errors.Is(err, ErrUnknownOutcome) {
			err = &SentError{Node: m.Name, Err: err}
		}
		return err
	})
	return s, err
}

// SentError reports a request sent to Node whose outcome is unknown.
type SentError struct {
	Node string
	Err  error
}

func (e *SentError) Error() string { return e.Err.Error() }

// Unwrap returns the error, which wraps ErrUnknownOutcome.
func (e *SentError) Unwrap() error { return e.Err }

// CallPrimary sends a request to a node whose local database is the primary:
// members advertising Meta.Primary, or if none does, members of
// Config.PrimaryRegion (SelectPrimary), as CallSelect does. Failing
// everywhere gives ErrNoPrimary.
func (t *Transport) CallPrimary(ctx context.Context, method string, body []byte) (node string, resp []byte, err error) {
	return t.CallSelect(ctx, SelectPrimary(t.cfg.PrimaryRegion), ErrNoPrimary, method, body)
}

// CallRegion is CallPrimary for any node of region (ErrNoNode when none
// answers).
func (t *Transport) CallRegion(ctx context.Context, region, method string, body []byte) (node string, resp []byte, err error) {
	return t.CallSelect(ctx, SelectRegion(region), ErrNoNode, method, body)
}

// SelectPrimary picks the members advertising Meta.Primary, or if none
// does, those of primaryRegion (if not empty).
func SelectPrimary(primaryRegion string) Selector {
	return func(ms []Member) ([]Member, string) {
		cands := slices.DeleteFunc(slices.Clone(ms), func(m Member) bool { return !m.Primary })
		what := "members advertising a primary database"
		if len(cands) == 0 && primaryRegion != "" {
			cands = slices.DeleteFunc(ms, func(m Member) bool { return m.Region != primaryRegion })
			what = fmt.Sprintf("no member advertises a primary database; members of primary region %q", primaryRegion)
		} else if len(cands) == 0 {
			what = "no member advertises a primary database and no primary region is configured"
		}
		return cands, what
	}
}

// SelectRegion picks the members of region.
func SelectRegion(region string) Selector {
	return func(ms []Member) ([]Member, string) {
		return slices.DeleteFunc(ms, func(m Member) bool { return m.Region != region }), fmt.Sprintf("members of region %q", region)
	}
}

// SelectDatabase picks the members whose copy of the database (system
// identifier and name) is the primary.
func SelectDatabase(sysID uint64, name string) Selector {
	return func(ms []Member) ([]Member, string) {
		return slices.DeleteFunc(ms, func(m Member) bool {
			_, primary := m.Serves(sysID, name)
			return !primary
		}), fmt.Sprintf("members serving database %q (system %d) as primary", name, sysID)
	}
}

// WaitPrimary returns once a primary node is known and our link to it is up
// (or this node is one), or fails with ErrNoPrimary when ctx ends.
func (t *Transport) WaitPrimary(ctx context.Context) error {
	if !t.calling.enter() {
		return ErrClosed
	}
	defer t.calling.leave()
	sel := SelectPrimary(t.cfg.PrimaryRegion)
	var attempts []attempt
	for round := 1; ; round++ {
		changed := t.mem.changes()
		cands, what := sel(t.selectable())
		t.Rank(cands)
		attempts = attempts[:0]
		for _, m := range cands {
			if m.Name == t.name {
				return nil
			}
			_, err := t.linkFor(ctx, m)
			if err == nil {
				return nil
			}
			attempts = append(attempts, attempt{m.Name, err})
		}
		if err := t.awaitRetry(ctx, changed, round); err != nil {
			return t.noneErr(ErrNoPrimary, what, attempts, err)
		}
	}
}

type attempt struct {
	node string
	err  error
}

func (t *Transport) checkSize(body []byte) error {
	if len(body) > t.cfg.MaxRequestSize {
		return fmt.Errorf("%w: %w: request of %d bytes exceeds MaxRequestSize (%d)", ErrNotSent, ErrFrameTooLarge, len(body), t.cfg.MaxRequestSize)
	}
	return nil
}

// selectLoop tries candidates in order until one takes the request.
func (t *Transport) selectLoop(ctx context.Context, sel Selector, none error, body []byte, try func(Member) error) error {
	if !t.calling.enter() {
		return ErrClosed
	}
	defer t.calling.leave()
	if err := t.checkSize(body); err != nil {
		return err
	}
	var attempts []attempt
	for round := 1; ; round++ {
		changed := t.mem.changes()
		cands, what := sel(t.selectable())
		t.Rank(cands)
		attempts = attempts[:0]
		for _, m := range cands {
			err := try(m)
			if err == nil || !errors.Is(err, ErrNotSent) || errors.Is(err, ErrClosed) {
				return err
			}
			attempts = append(attempts, attempt{m.Name, err})
			if ctx.Err() != nil {
				break
			}
		}
		if err := t.awaitRetry(ctx, changed, round); err != nil {
			return t.noneErr(none, what, attempts, err)
		}
	}
}

// awaitRetry waits before another round: until membership changes or a
// backoff passes. It gives up (returning why) when ctx ends, when ctx has no
// deadline (one round only: without a deadline, retrying would never end),
// or when the Transport closes.
func (t *Transport) awaitRetry(ctx context.Context, changed <-chan struct{}, round int) error {
	if _, ok := ctx.Deadline(); !ok {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("no deadline to retry within")
	}
	timer := time.NewTimer(t.backoff(round))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.closing:
		return ErrClosed
	case <-changed:
	case <-timer.C:
	}
	return nil
}

// noneErr explains a failed selection: none, and ErrNotSent since nothing
// was sent.
func (t *Transport) noneErr(none error, what string, attempts []attempt, cause error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; ", what)
	if len(attempts) == 0 {
		b.WriteString("no candidate")
	}
	for i, a := range attempts {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", a.node, a.err)
	}
	ms := t.mem.list()
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	fmt.Fprintf(&b, "; membership knows %d node(s):", len(ms))
	for _, m := range ms {
		fmt.Fprintf(&b, " %s (region %s", m.Name, m.Region)
		if m.Primary {
			b.WriteString(", primary")
		}
		for _, d := range m.Databases {
			if d.Primary {
				fmt.Fprintf(&b, ", primary of %s", d.Name)
			}
		}
		b.WriteString(")")
	}
	if errors.Is(none, ErrNotSent) {
		return fmt.Errorf("%w: %s: %w", none, b.String(), cause)
	}
	return fmt.Errorf("%w: %w: %s: %w", none, ErrNotSent, b.String(), cause)
}

// memberByName finds a member, or a node membership lost while our link
// to it is up.
func (t *Transport) memberByName(node string) (Member, error) {
	if m, ok := t.mem.get(node); ok {
		return m, nil
	}
	t.mu.Lock()
	p := t.peers[node]
	t.mu.Unlock()
	if p != nil && p.liveLink() != nil {
		p.mu.Lock()
		m := Member{Name: node, Meta: p.meta.clone()}
		p.mu.Unlock()
		return m, nil
	}
	return Member{}, fmt.Errorf("%w: node %q is not a live member", ErrNotSent, node)
}

// selectable is what selectors choose from: the live members and the nodes
// membership lost while our link to them is up.
func (t *Transport) selectable() []Member {
	ms := t.Members()
	t.mu.Lock()
	var gone []*peer
	for _, p := range t.peers {
		gone = append(gone, p)
	}
	t.mu.Unlock()
	for _, p := range gone {
		p.mu.Lock()
		isGone, meta := p.gone, p.meta.clone()
		p.mu.Unlock()
		if !isGone {
			continue
		}
		if l := p.liveLink(); l != nil {
			ms = append(ms, Member{Name: p.name, Meta: meta, RTT: l.RTT()})
		}
	}
	return ms
}

// linkFor returns the link to a remote member, dialling if it is alive.
func (t *Transport) linkFor(ctx context.Context, m Member) (*clientLink, error) {
	if v := m.commonVersion(t.cfg.MinProtocolVersion, t.cfg.MaxProtocolVersion); v == 0 {
		return nil, fmt.Errorf("%w: %w: node %s speaks versions %d–%d, we speak %d–%d", ErrNotSent, ErrIncompatible, m.Name, m.minVersion(), m.Version, t.cfg.MinProtocolVersion, t.cfg.MaxProtocolVersion)
	}
	if m.RPCAddr == "" {
		return nil, fmt.Errorf("%w: node %s advertises no link address", ErrNotSent, m.Name)
	}
	if !m.Alive {
		t.mu.Lock()
		p := t.peers[m.Name]
		t.mu.Unlock()
		if p != nil {
			if l := p.liveLink(); l != nil {
				return l, nil
			}
		}
		return nil, fmt.Errorf("%w: node %s is not a live member and our link to it is down", ErrNotSent, m.Name)
	}
	p, err := t.peerFor(m)
	if err != nil {
		return nil, err
	}
	return p.get(ctx)
}

// callMember sends one request to one member.
func (t *Transport) callMember(ctx context.Context, m Member, method string, body []byte) ([]byte, error) {
	if m.Name == t.name {
		return t.callLocal(ctx, method, body)
	}
	l, err := t.linkFor(ctx, m)
	if err != nil {
		return nil, err
	}
	c, err := l.open(ctx, method, body, t.cfg.ChunkSize, t.cfg.StreamWindow)
	if err != nil {
		return nil, err
	}
	return c.readAll(ctx, t.cfg.MaxResponseSize)
}

// openMember opens a stream to one member and waits for its first part.
func (t *Transport) openMember(ctx context.Context, m Member, method string, body []byte) (*Stream, error) {
	if m.Name == t.name {
		return t.openLocal(ctx, method, body)
	}
	l, err := t.linkFor(ctx, m)
	if err != nil {
		return nil, err
	}
	c, err := l.open(ctx, method, body, t.cfg.ChunkSize, t.cfg.StreamWindow)
	if err != nil {
		return nil, err
	}
	return startStream(ctx, c, m.Name, nil)
}

// startStream waits for a stream's first part or outcome; an outcome that
// is an error is returned instead of the stream.
func startStream(ctx context.Context, c *call, node string, cancel context.CancelFunc) (*Stream, error) {
	for !c.started() {
		if err := c.wait(ctx); err != nil {
			if _, ok := c.abandon(err); !ok {
				<-c.wake
			}
		}
	}
	c.mu.Lock()
	failed := c.final && len(c.chunks) == 0 && c.err != nil
	err := c.err
	c.mu.Unlock()
	if failed {
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	return &Stream{c: c, ctx: ctx, cancel: cancel, node: node}, nil
}

// localError maps an in-process handler's error as the link would.
func localError(err error, sent bool) error {
	var re *RemoteError
	switch {
	case errors.Is(err, ErrDecline) && !sent:
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	case errors.As(err, &re) && re.err == errPanicked:
		return re
	}
	return &RemoteError{Message: err.Error(), err: err}
}

// callLocal runs a request for this very node in-process, with the same
// guarantees a remote call has: its own ctx, panic recovery, RemoteError.
func (t *Transport) callLocal(ctx context.Context, method string, body []byte) ([]byte, error) {
	if !t.serving.enter() {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ErrClosed)
	}
	defer t.serving.leave()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.local.ctx, cancel)
	defer stop()
	var parts []byte
	req := &Request{Method: method, Body: body, Peer: t.name, Conn: t.local, sink: bufSink{buf: &parts, limit: t.cfg.MaxResponseSize}}
	resp, err := t.invoke(ctx, req)
	if err != nil {
		return nil, localError(err, req.sent)
	}
	if req.sent {
		if len(parts)+len(resp) > t.cfg.MaxResponseSize {
			return nil, fmt.Errorf("%w: the response exceeds MaxResponseSize (%d bytes): use Open to stream it", ErrFrameTooLarge, t.cfg.MaxResponseSize)
		}
		return append(parts, resp...), nil
	}
	return resp, nil
}

// openLocal runs a streamed request in-process: the handler in its own
// goroutine, its parts flowing to the Stream under the same window.
func (t *Transport) openLocal(ctx context.Context, method string, body []byte) (*Stream, error) {
	if !t.serving.enter() {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ErrClosed)
	}
	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.local.ctx, cancel)
	c := newCall(t.cfg.StreamWindow)
	c.space = make(chan struct{}, 1)
	req := &Request{Method: method, Body: body, Peer: t.name, Conn: t.local, sink: localSink{c}}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.serving.leave()
		defer stop()
		defer cancel()
		resp, err := t.invoke(hctx, req)
		if err != nil {
			c.finish(nil, localError(err, req.sent))
			return
		}
		c.finish(resp, nil)
	}()
	return startStream(ctx, c, t.name, cancel)
}

// Rank orders candidates in place, best first: this node, then live
// members by measured RTT, then live members not yet measured (by name,
// for determinism), then members membership lost but we are still linked
// to.
func (t *Transport) Rank(ms []Member) {
	key := func(m Member) (int, time.Duration) {
		switch {
		case m.Name == t.name:
			return 0, 0
		case !m.Alive:
			return 3, m.RTT
		case m.RTT > 0:
			return 1, m.RTT
		default:
			return 2, 0
		}
	}
	slices.SortStableFunc(ms, func(a, b Member) int {
		ca, ra := key(a)
		cb, rb := key(b)
		return cmp.Or(cmp.Compare(ca, cb), cmp.Compare(ra, rb), strings.Compare(a.Name, b.Name))
	})
}
