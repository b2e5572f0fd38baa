package flypg

import (
	"database/sql"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flypg/flypg/internal/hist"
	"github.com/flypg/flypg/lsn"
)

// Stats are a node's counters and state, for health endpoints, tests and
// package metrics (which exports them to Prometheus). Counters count since
// Start.
type Stats struct {
	// RoundTrips counts requests sent to serving nodes (a batch of
	// statements, a description, a procedure call): the WAN round trips
	// flypg paid.
	RoundTrips int64
	// Forwarded counts statements sent to a serving node (each statement
	// of a remote transaction counts); Local those run on the local
	// database (in any region, local transactions included); Retried reads the local replica refused as writes
	// (SQLSTATE 25006) that were then forwarded; PrimaryReads reads sent to
	// the primary (OnPrimary, AfterLSN not met locally, local database
	// unreachable).
	Forwarded, Local, Retried, PrimaryReads int64
	// Awaits counts waits for replay; Skipped committed writes that did not
	// wait (NoAwait, or a writable local database); AwaitTimeouts waits that
	// failed (an *AwaitError, or success under AwaitTimeoutSucceed).
	Awaits, Skipped, AwaitTimeouts int64
	// AwaitP50 and AwaitP99 are the wait's own duration (from a log-scale
	// histogram: they overstate by up to 25%); AwaitLatency is that
	// histogram.
	AwaitP50, AwaitP99 time.Duration
	AwaitLatency       Histogram
	// Transactions counts the remote transactions this node began (ones
	// that sent at least one batch).
	Transactions int64
	// Committed counts writes that committed whose commit position could
	// not be read (*CommittedError); UnknownOutcomes writes whose outcome
	// is unknown (ErrUnknownOutcome).
	Committed, UnknownOutcomes int64
	// RemoteTx is the number of remote transactions this node is serving.
	RemoteTx int
	// Tracker is the LSN tracker's view of the node's own database (zero in
	// dev mode or before its first wait).
	Tracker lsn.Stats
	// Databases describes each database the node has opened, its own first.
	Databases []DatabaseStats
	// Members are the cluster's live members as this node sees them, this
	// node included (none in dev mode).
	Members []MemberStats
}

// Histogram is a snapshot of a duration histogram: log-linear buckets, four
// per power of two nanoseconds. Buckets holds the non-empty ones in
// increasing order, each counting the durations above the previous
// bucket's Upper and at most its own (not cumulative).
type Histogram struct {
	Buckets []HistogramBucket
	Count   uint64
	Sum     time.Duration
}

// HistogramBucket is one bucket of a Histogram.
type HistogramBucket struct {
	Upper time.Duration
	Count uint64
}

// DatabaseStats describes one database of a node.
type DatabaseStats struct {
	Name  string
	SysID uint64
	// Role is "primary", "standby", "unreachable", or "unknown" (not
	// checked yet).
	Role string
	// Replayed is a standby's replay position, ReceiveLagBytes how much WAL
	// it has received but not yet replayed, and ReplayLag how long ago the
	// last transaction it replayed committed on the primary (it grows on an
	// idle primary too: PostgreSQL's pg_last_xact_replay_timestamp).
	Replayed        lsn.LSN
	ReceiveLagBytes uint64
	ReplayLag       time.Duration
	// Tracker is the database's LSN tracker's view.
	Tracker lsn.Stats
	// Serving is the pool of primary connections that serve forwarded work
	// (database/sql's view: open, in use, waits for a connection).
	Serving sql.DBStats
}

// MemberStats describes one member of the cluster.
type MemberStats struct {
	Name, Region string
	Self         bool
	// RTT is the round-trip time measured on the link to it (or by gossip
	// probes before a link exists); 0 for this node.
	RTT time.Duration
	// Primaries names the databases whose primary it has.
	Primaries []string
	// LinkVersion is the write link's protocol version between this node
	// and it: the newest both speak (see Config.MaxProtocolVersion); 0
	// if they share none, and this node cannot call it.
	LinkVersion int
}

type counters struct {
	roundTrips                              atomic.Int64
	forwarded, local, retried, primaryReads atomic.Int64
	awaits, skipped, awaitTimeouts          atomic.Int64
	committedUnknownLSN, unknownOutcomes    atomic.Int64
	transactions                            atomic.Int64
	awaitLatency                            histogram
	lastAwaitLog                            atomic.Int64 // unix nanos of the last AwaitTimeoutSucceed warning
}

type histogram struct{ hist.Histogram }

func (h *histogram) record(d time.Duration) { h.Record(d) }

func (h *histogram) snapshot() Histogram {
	s := Histogram{Count: h.Count(), Sum: h.Sum()}
	h.Buckets(func(upper time.Duration, n uint64) {
		s.Buckets = append(s.Buckets, HistogramBucket{Upper: upper, Count: n})
	})
	return s
}

// Stats returns the node's counters and state.
func (n *Node) Stats() Stats {
	c := &n.counters
	q := c.awaitLatency.Quantiles(0.5, 0.99)
	s := Stats{
		RoundTrips:      c.roundTrips.Load(),
		Forwarded:       c.forwarded.Load(),
		Local:           c.local.Load(),
		Retried:         c.retried.Load(),
		PrimaryReads:    c.primaryReads.Load(),
		Awaits:          c.awaits.Load(),
		Skipped:         c.skipped.Load(),
		AwaitTimeouts:   c.awaitTimeouts.Load(),
		AwaitP50:        q[0],
		AwaitP99:        q[1],
		AwaitLatency:    c.awaitLatency.snapshot(),
		Transactions:    c.transactions.Load(),
		Committed:       c.committedUnknownLSN.Load(),
		UnknownOutcomes: c.unknownOutcomes.Load(),
		RemoteTx:        n.server.OpenTx(),
	}
	for _, db := range n.databases() {
		ds := db.stats()
		s.Databases = append(s.Databases, ds)
		if db == n.self {
			s.Tracker = ds.Tracker
		}
	}
	if n.transport != nil {
		for _, m := range n.transport.Members() {
			ms := MemberStats{Name: m.Name, Region: m.Region, RTT: m.RTT, Self: m.Name == n.Name(), LinkVersion: m.LinkVersion}
			for _, d := range m.Databases {
				if d.Primary {
					ms.Primaries = append(ms.Primaries, d.Name)
				}
			}
			s.Members = append(s.Members, ms)
		}
		slices.SortFunc(s.Members, func(a, b MemberStats) int { return strings.Compare(a.Name, b.Name) })
	}
	return s
}

func (db *database) stats() DatabaseStats {
	id, st := db.id(), db.state.Load()
	ds := DatabaseStats{Name: id.Name, SysID: id.SysID, Replayed: st.replayed, ReplayLag: st.replayAge}
	switch {
	case db.n.role == roleDev:
		ds.Role = "unknown"
	case !st.reachable && st.err != nil:
		ds.Role = "unreachable"
	case !st.checked:
		ds.Role = "unknown"
	case st.primary:
		ds.Role = "primary"
	default:
		ds.Role = "standby"
	}
	if st.received > st.replayed {
		ds.ReceiveLagBytes = uint64(st.received - st.replayed)
	}
	if db.trackerStarted() {
		ds.Tracker = db.tracker.Stats()
	}
	if db.poolStarted() {
		ds.Serving = db.pool.Stats()
	}
	return ds
}
