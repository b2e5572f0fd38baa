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

// Call sends a request to the named node and returns its answer. Errors
// wrap ErrNotSent (safe to retry), ErrUnknownOutcome (it may have run), or
// are a *RemoteError from the handler; ErrClosed after Close.
func (t *Transport) Call(ctx context.Context, node, method string, body []byte) ([]byte, error) {
	if !t.calling.enter() {
		return nil, ErrClosed
	}
	defer t.calling.leave()
	m, ok := t.mem.get(node)
	if !ok {
		return nil, fmt.Errorf("%w: node %q is not a live member", ErrNotSent, node)
	}
	return t.callMember(ctx, m, method, body)
}

// CallPrimary sends a request to a node whose local database is the primary:
// members advertising Meta.Primary, or if none does, members of
// Config.PrimaryRegion; this node first if it qualifies, then by lowest RTT.
// A candidate the request could not be sent to is skipped for the next; if
// the context has a deadline, rounds repeat until it passes. A request that
// was sent is never resent elsewhere. Failing everywhere gives ErrNoPrimary,
// with what membership knew.
func (t *Transport) CallPrimary(ctx context.Context, method string, body []byte) (node string, resp []byte, err error) {
	return t.callAny(ctx, ErrNoPrimary, t.primaryCandidates, method, body)
}

// CallRegion is CallPrimary for any node of region (ErrNoNode when none
// answers).
func (t *Transport) CallRegion(ctx context.Context, region, method string, body []byte) (node string, resp []byte, err error) {
	return t.callAny(ctx, ErrNoNode, func() ([]Member, string) { return t.regionCandidates(region) }, method, body)
}

// WaitPrimary returns once a primary node is known and our link to it is up
// (or this node is one), or fails with ErrNoPrimary when ctx ends.
func (t *Transport) WaitPrimary(ctx context.Context) error {
	if !t.calling.enter() {
		return ErrClosed
	}
	defer t.calling.leave()
	var attempts []attempt
	for round := 1; ; round++ {
		changed := t.mem.changes()
		cands, what := t.primaryCandidates()
		attempts = attempts[:0]
		for _, m := range cands {
			if m.Name == t.name {
				return nil
			}
			p, err := t.peerFor(m)
			if err == nil {
				if _, err = p.get(ctx); err == nil {
					return nil
				}
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

// callAny tries candidates in order until one takes the request.
func (t *Transport) callAny(ctx context.Context, none error, candidates func() ([]Member, string), method string, body []byte) (string, []byte, error) {
	if !t.calling.enter() {
		return "", nil, ErrClosed
	}
	defer t.calling.leave()
	if len(method)+len(body)+frameOverhead > t.cfg.MaxFrameSize {
		return "", nil, fmt.Errorf("%w: request of about %d bytes, limit %d", ErrFrameTooLarge, len(method)+len(body)+frameOverhead, t.cfg.MaxFrameSize)
	}
	var attempts []attempt
	for round := 1; ; round++ {
		changed := t.mem.changes()
		cands, what := candidates()
		attempts = attempts[:0]
		for _, m := range cands {
			resp, err := t.callMember(ctx, m, method, body)
			if err == nil || !errors.Is(err, ErrNotSent) || errors.Is(err, ErrClosed) {
				return m.Name, resp, err
			}
			attempts = append(attempts, attempt{m.Name, err})
			if ctx.Err() != nil {
				break
			}
		}
		if err := t.awaitRetry(ctx, changed, round); err != nil {
			return "", nil, t.noneErr(none, what, attempts, err)
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

// noneErr explains a failed CallPrimary/CallRegion/WaitPrimary.
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
		b.WriteString(")")
	}
	return fmt.Errorf("%w: %s: %w", none, b.String(), cause)
}

// callMember sends one request to one member.
func (t *Transport) callMember(ctx context.Context, m Member, method string, body []byte) ([]byte, error) {
	if m.Name == t.name {
		return t.callLocal(ctx, method, body)
	}
	if !m.routable() {
		return nil, fmt.Errorf("%w: node %s advertises no usable link (version %d, address %q)", ErrNotSent, m.Name, m.Version, m.RPCAddr)
	}
	p, err := t.peerFor(m)
	if err != nil {
		return nil, err
	}
	l, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return l.call(ctx, method, body, t.cfg.MaxFrameSize)
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
	resp, err := t.invoke(ctx, &Request{Method: method, Body: body, Peer: t.name, Conn: t.local})
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) && re.err == errPanicked {
			return nil, re
		}
		return nil, &RemoteError{Message: err.Error(), err: err}
	}
	return resp, nil
}

// primaryCandidates lists where a primary-bound request may go, best first,
// and describes the selection for error messages.
func (t *Transport) primaryCandidates() ([]Member, string) {
	ms := t.Members()
	cands := slices.DeleteFunc(slices.Clone(ms), func(m Member) bool { return !m.Primary })
	what := "members advertising a primary database"
	if len(cands) == 0 && t.cfg.PrimaryRegion != "" {
		cands = slices.DeleteFunc(ms, func(m Member) bool { return m.Region != t.cfg.PrimaryRegion })
		what = fmt.Sprintf("no member advertises a primary database; members of primary region %q", t.cfg.PrimaryRegion)
	} else if len(cands) == 0 {
		what = "no member advertises a primary database and no primary region is configured"
	}
	t.rank(cands)
	return cands, what
}

func (t *Transport) regionCandidates(region string) ([]Member, string) {
	cands := slices.DeleteFunc(t.Members(), func(m Member) bool { return m.Region != region })
	t.rank(cands)
	return cands, fmt.Sprintf("members of region %q", region)
}

// rank orders candidates: this node, then known RTTs ascending, then the
// unmeasured, by name for determinism.
func (t *Transport) rank(ms []Member) {
	key := func(m Member) (int, time.Duration) {
		switch {
		case m.Name == t.name:
			return 0, 0
		case m.RTT > 0:
			return 1, m.RTT
		default:
			return 2, 0
		}
	}
	slices.SortFunc(ms, func(a, b Member) int {
		ca, ra := key(a)
		cb, rb := key(b)
		return cmp.Or(cmp.Compare(ca, cb), cmp.Compare(ra, rb), strings.Compare(a.Name, b.Name))
	})
}
