package flypg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/transport"
)

// minCheckGap spaces out role checks asked for by errors, so a burst of
// failing connections costs one check, not one each.
const minCheckGap = 100 * time.Millisecond

// startCluster joins the node to the cluster: the transport, serving the
// node's server, and the role checker that keeps what the node advertises
// about its databases true.
func (n *Node) startCluster(ctx context.Context) error {
	join, joinDNS := splitJoin(n.cfg.Join)
	t, err := transport.Start(ctx, transport.Config{
		NodeName:            n.cfg.NodeName,
		Region:              n.cfg.Region,
		PrimaryRegion:       n.cfg.PrimaryRegion,
		GossipAddr:          n.cfg.GossipAddr,
		RPCAddr:             n.cfg.RPCAddr,
		AdvertiseRPCAddr:    n.cfg.AdvertiseRPCAddr,
		AdvertiseGossipAddr: n.cfg.AdvertiseGossipAddr,
		Join:                join,
		JoinDNS:             joinDNS,
		Secret:              n.cfg.Secret,
		PreviousSecrets:     n.cfg.PreviousSecrets,
		Label:               n.cfg.App,
		Profile:             n.cfg.GossipProfile,
		InsecurePlaintext:   n.cfg.InsecurePlaintext,
		MaxProtocolVersion:  n.cfg.MaxProtocolVersion,
		Logger:              n.cfg.Logger,
	}, n.server)
	if err != nil {
		return err
	}
	n.transport = t
	n.bg.Add(1)
	go n.checkRoles()
	return nil
}

// splitJoin separates host:port peers from a DNS name to resolve (an entry
// without a port, such as "myapp.internal").
func splitJoin(join []string) (peers []string, dns string) {
	for _, j := range join {
		if _, _, err := net.SplitHostPort(j); err == nil || strings.Count(j, ":") > 1 || dns != "" {
			peers = append(peers, j)
		} else {
			dns = j
		}
	}
	return peers, dns
}

// requestCheck asks the role checker to look at every database now: after
// a refused write (25006), a connection error, a new database.
func (n *Node) requestCheck() {
	select {
	case n.checks <- struct{}{}:
	default:
	}
}

// checkRoles asks each local database for its role every
// RoleCheckInterval, and at once when asked; what changed is gossiped, so
// that after a promotion writes route to the new primary without a restart
// or a config change.
func (n *Node) checkRoles() {
	defer n.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-n.stop
		cancel()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-timer.C:
		case <-n.checks:
			timer.Stop()
			select { // a burst of requests is one check
			case <-n.stop:
				return
			case <-time.After(minCheckGap):
			}
		}
		changed := false
		for _, db := range n.databases() {
			if db.check(ctx) {
				changed = true
			}
		}
		if changed {
			n.publish()
		}
		n.notePrimaries()
		timer.Reset(n.cfg.RoleCheckInterval)
	}
}

// notePrimaries logs, once per change, which node holds the primary of
// each of the node's databases (as gossip tells): "primary found", "primary
// lost", and failovers, for the operator reading the logs.
func (n *Node) notePrimaries() {
	members := n.transport.Members()
	for _, db := range n.databases() {
		id := db.id()
		var holders []string
		for _, m := range members {
			if _, primary := m.Serves(id.SysID, id.Name); primary {
				holders = append(holders, m.Name)
			}
		}
		slices.Sort(holders)
		now := strings.Join(holders, ",")
		if prev, _ := db.primaryAt.Swap(&now).(*string); prev == nil && now == "" || prev != nil && *prev == now {
			continue
		} else if now == "" {
			n.cfg.Logger.Warn("flypg: no node holds the primary of the database any more", "database", id.Name)
		} else if prev == nil || *prev == "" {
			n.cfg.Logger.Info("flypg: primary found", "database", id.Name, "node", now)
		} else {
			n.cfg.Logger.Warn("flypg: the primary moved", "database", id.Name, "from", *prev, "to", now)
		}
	}
}

// publish advertises the node's databases and which of them it holds the
// primary of.
func (n *Node) publish() {
	if n.transport == nil || n.closed() {
		return
	}
	var metas []transport.DatabaseMeta
	for _, db := range n.databases() {
		id := db.id()
		metas = append(metas, transport.DatabaseMeta{SysID: id.SysID, Name: id.Name, Primary: db.writable()})
	}
	if err := n.transport.SetDatabases(metas); err != nil {
		n.cfg.Logger.Error("flypg: cannot advertise the node's databases", "err", err)
	}
}

// primaryNodes selects the members that may take a write for database id:
// those advertising its primary, this node excluded (it would not forward
// if it had it); if none does — the cluster is starting, or between a
// failover and the next check — the members of the primary region, which
// decline if their copy is not the primary after all.
func (n *Node) primaryNodes(db *database) transport.Selector {
	id := db.id()
	return func(ms []transport.Member) ([]transport.Member, string) {
		var out []transport.Member
		self := n.Name()
		for _, m := range ms {
			if m.Name == self && !n.serves(id) {
				// This node forwards only while its own copy is not the
				// primary; if that changes mid-request (a promotion), it
				// may take its own write.
				continue
			}
			for _, d := range m.Databases {
				if d.Primary && d.Name == id.Name && (id.SysID == 0 || d.SysID == 0 || d.SysID == id.SysID) {
					out = append(out, m)
					break
				}
			}
		}
		if len(out) > 0 {
			return out, fmt.Sprintf("nodes advertising the primary of database %s", id.Name)
		}
		for _, m := range ms {
			if m.Name != n.Name() && m.Region == n.cfg.PrimaryRegion {
				out = append(out, m)
			}
		}
		// A primary-region node whose own database refuses it (a wrong
		// password, a server down) is often why: say so here, not only in
		// the logs.
		return out, fmt.Sprintf("no node advertises the primary of database %s (this node's copy: %s); nodes of primary region %q",
			id.Name, db.describeRole(), n.cfg.PrimaryRegion)
	}
}

// serves reports whether this node's copy of database id is the writable
// primary now.
func (n *Node) serves(id wire.DB) bool {
	for _, db := range n.databases() {
		if db.matches(id) {
			return db.writable()
		}
	}
	return false
}

// withRPCTimeout bounds a forwarded call whose caller set no deadline; a
// caller's own deadline covers forwarding and awaiting together.
func (n *Node) withRPCTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, n.cfg.RPCTimeout)
}

// linkError maps transport failures to flypg's sentinels.
func (n *Node) linkError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, transport.ErrUnknownOutcome):
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	case errors.Is(err, transport.ErrFrameTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, transport.ErrNoNode):
		return fmt.Errorf("%w: %w", ErrNoNode, err)
	case errors.Is(err, transport.ErrNoPrimary):
		return fmt.Errorf("%w: %w", ErrNoPrimary, err)
	case errors.Is(err, transport.ErrNotSent):
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w: %w", ErrNoPrimary, err)
		}
		return fmt.Errorf("%w: %w", ErrNoPrimary, err)
	}
	return err
}

// pingPrimary asks, once (bounded by RPCTimeout), whether a node takes
// writes for db.
func (n *Node) pingPrimary(ctx context.Context, db *database) error {
	if n.transport == nil {
		return ErrLocalUnavailable
	}
	body, err := wire.Marshal(&wire.Ping{DB: db.id()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout)
	defer cancel()
	if _, _, err := n.transport.CallSelect(ctx, n.primaryNodes(db), transport.ErrNoPrimary, wire.MethodPing, body); err != nil {
		return fmt.Errorf("%w (and %w)", ErrLocalUnavailable, n.linkError(ctx, err))
	}
	return nil
}

// WaitReady waits until the node can take writes for its own database: its
// local copy is the primary, or a node with the primary is reachable. In
// dev mode it returns at once. Without a deadline on ctx it waits until
// ctx is cancelled.
func (n *Node) WaitReady(ctx context.Context) error {
	if n.transport == nil {
		return nil
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.self.id().SysID == 0 && n.self.check(ctx) {
			n.publish() // learn the database's identity: requests name it
		}
		if n.self.writable() {
			return nil
		}
		body, err := wire.Marshal(&wire.Ping{DB: n.self.id()})
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _, err = n.transport.CallSelect(wctx, n.primaryNodes(n.self), transport.ErrNoPrimary, wire.MethodPing, body)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNoPrimary, err)
		case <-tick.C:
		}
	}
}
