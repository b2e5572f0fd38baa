package flypg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/transport"
)

// primaryCheckInterval is how often a node re-reads pg_is_in_recovery() of
// its local database, to notice a promotion or a misconfiguration.
const primaryCheckInterval = 5 * time.Second

// startCluster joins the node to the cluster: the LSN tracker for its local
// database, the server for forwarded work, and the transport.
func (n *Node) startCluster(ctx context.Context) error {
	if len(n.cfg.Secret) == 0 {
		return errors.New("flypg: a cluster secret is required outside dev mode: set Config.Secret or FLYPG_SECRET")
	}
	tr, err := lsn.NewTracker(lsn.Config{DSN: n.cfg.DSN, Logger: n.cfg.Logger})
	if err != nil {
		return err
	}
	n.tracker = tr
	primary, err := tr.InRecovery(ctx)
	if err != nil {
		tr.Close()
		return fmt.Errorf("flypg: check the local database: %w", err)
	}
	n.setLocalPrimary(!primary)
	if n.role == rolePrimary && primary {
		tr.Close()
		return fmt.Errorf("flypg: node %q is in the primary region %q but its local database is a standby (pg_is_in_recovery() = true): point DATABASE_URL at the primary",
			n.cfg.NodeName, n.cfg.PrimaryRegion)
	}

	join, joinDNS := splitJoin(n.cfg.Join)
	t, err := transport.Start(ctx, transport.Config{
		NodeName:         n.cfg.NodeName,
		Region:           n.cfg.Region,
		PrimaryRegion:    n.cfg.PrimaryRegion,
		GossipAddr:       n.cfg.GossipAddr,
		RPCAddr:          n.cfg.RPCAddr,
		AdvertiseRPCAddr: n.cfg.AdvertiseRPCAddr,
		Join:             join,
		JoinDNS:          joinDNS,
		Secret:           n.cfg.Secret,
		Profile:          n.cfg.GossipProfile,
		Primary:          func() bool { return n.localIsPrimary(context.Background()) },
		Logger:           n.cfg.Logger,
	}, n.server)
	if err != nil {
		tr.Close()
		return err
	}
	n.transport = t
	n.cfg.NodeName = t.Name()
	return nil
}

// splitJoin separates host:port peers from DNS names to resolve (an entry
// without a port, such as "myapp.internal").
func splitJoin(join []string) (peers []string, dns string) {
	for _, j := range join {
		if _, _, err := net.SplitHostPort(j); err == nil || strings.Count(j, ":") > 1 {
			peers = append(peers, j)
		} else if dns == "" {
			dns = j
		} else {
			peers = append(peers, j)
		}
	}
	return peers, dns
}

func (n *Node) stopCluster() error {
	n.bg.Lock()
	n.bg.closed = true
	n.bg.Unlock()
	n.bg.wg.Wait()
	var errs []error
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	n.server.close()
	if n.tracker != nil {
		errs = append(errs, n.tracker.Close())
	}
	n.dbOnce.Do(func() {}) // no opening after this point
	if n.db != nil {
		errs = append(errs, n.db.Close())
	}
	return errors.Join(errs...)
}

// localIsPrimary reports whether the local database accepts writes. The
// answer is cached and refreshed at most every primaryCheckInterval, so the
// write path pays nothing for it.
func (n *Node) localIsPrimary(ctx context.Context) bool {
	if n.tracker == nil {
		return true // dev mode: whatever the local database is, it is used as is
	}
	st := n.primaryState.Load()
	if st != nil && time.Since(st.at) < primaryCheckInterval {
		return st.primary
	}
	if n.checking.CompareAndSwap(false, true) {
		n.bg.Lock()
		if n.bg.closed {
			n.bg.Unlock()
			return st != nil && st.primary
		}
		n.bg.wg.Add(1)
		n.bg.Unlock()
		go func() {
			defer n.bg.wg.Done()
			defer n.checking.Store(false)
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if rec, err := n.tracker.InRecovery(cctx); err == nil {
				n.setLocalPrimary(!rec)
			}
		}()
	}
	return st != nil && st.primary
}

type primaryState struct {
	primary bool
	at      time.Time
}

func (n *Node) setLocalPrimary(p bool) {
	old := n.primaryState.Swap(&primaryState{primary: p, at: time.Now()})
	if n.transport != nil && (old == nil || old.primary != p) {
		n.transport.SetPrimary(p)
	}
}

// WaitReady waits until the node can serve writes: a primary-region node is
// known and reachable, or this node is one. In dev mode it returns at once.
// Without a deadline on ctx it waits until ctx is cancelled.
func (n *Node) WaitReady(ctx context.Context) error {
	if n.transport == nil || n.localIsPrimary(ctx) {
		return nil
	}
	for {
		// The transport gives up on a context without a deadline, so wait
		// in slices until ctx itself ends.
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if _, ok := ctx.Deadline(); !ok {
			wctx, cancel = context.WithTimeout(ctx, time.Second)
		}
		err := n.transport.WaitPrimary(wctx)
		cancel()
		if err == nil {
			return nil
		}
		if wctx == ctx || ctx.Err() != nil {
			return n.linkError(ctx, err)
		}
	}
}

// GossipAddr is the memberlist address the node bound ("" in dev mode).
func (n *Node) GossipAddr() string {
	if n.transport == nil {
		return ""
	}
	return n.transport.GossipAddr()
}

// RPCAddr is the write-link address the node listens on ("" in dev mode).
func (n *Node) RPCAddr() string {
	if n.transport == nil {
		return ""
	}
	return n.transport.RPCAddr()
}

// Stats are a node's counters, for tests, health endpoints and metrics.
type Stats struct {
	// Forwarded counts statements sent to the primary region; Local those
	// run on the local database; Retried reads the replica refused as
	// writes (SQLSTATE 25006) and that were then forwarded.
	Forwarded, Local, Retried int64
	// Awaits counts waits for replay; Skipped writes that did not wait
	// (NoAwait, or a writable local database).
	Awaits, Skipped int64
	// RemoteTx is the number of remote transactions this node is serving.
	RemoteTx int
	// Tracker is the LSN tracker's view (zero in dev mode).
	Tracker lsn.Stats
}

type counters struct {
	forwarded, local, retried, awaits, skipped atomic.Int64
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{
		Forwarded: n.counters.forwarded.Load(),
		Local:     n.counters.local.Load(),
		Retried:   n.counters.retried.Load(),
		Awaits:    n.counters.awaits.Load(),
		Skipped:   n.counters.skipped.Load(),
		RemoteTx:  n.server.openTxCount(),
	}
	if n.tracker != nil {
		s.Tracker = n.tracker.Stats()
	}
	return s
}
