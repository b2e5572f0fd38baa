package flypg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flypg/flypg/lsn"
)

// wait blocks until the local copy has replayed l, bounded by AwaitTimeout
// (and ctx). A copy that is itself writable has nothing to wait for; one
// that is unreachable fails at once with ErrLocalUnavailable rather than
// make every write sit out the timeout.
func (db *database) wait(ctx context.Context, l lsn.LSN, afterLSN bool) (err error) {
	if st := db.state.Load(); !st.checked && st.err == nil {
		// Not checked yet (a node just started): find out, rather than
		// take "unknown" for "unreachable".
		if db.check(ctx) {
			db.n.publish()
		}
	}
	if l == 0 || db.writable() {
		return nil
	}
	if obs := db.n.cfg.Observer; obs != nil {
		octx := obs.AwaitStart(ctx, Await{Database: db.name, LSN: l, AfterLSN: afterLSN})
		defer func() { obs.AwaitEnd(octx, err) }()
	}
	// The copy going down ends the wait at once. The signal is taken
	// before the reachability check: a copy marked down between the two
	// has closed this channel, rather than one made after it.
	down := db.downSignal()
	if !db.reachable() {
		return ErrLocalUnavailable
	}
	tr, err := db.lsnTracker()
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, db.n.cfg.AwaitTimeout)
	defer cancel()
	// (The goroutine ends with wctx, which the deferred cancel ends.)
	go func() {
		select {
		case <-down:
			cancel()
		case <-wctx.Done():
		}
	}()
	start := time.Now()
	err = tr.Wait(wctx, l)
	if errors.Is(err, lsn.ErrPromoted) {
		// The tracker's role may be old (it learns it only while it
		// polls): a database demoted or rebuilt as a standby since waits
		// again.
		rec, rerr := tr.Refresh(wctx)
		if rerr != nil { // a connection a restart cut: the next connects anew
			rec, rerr = tr.Refresh(wctx)
		}
		if rerr == nil && rec {
			err = tr.Wait(wctx, l)
		}
	}
	select {
	case <-down:
		if err != nil {
			err = ErrLocalUnavailable // it went down while we waited
		}
	default:
	}
	db.n.counters.awaitLatency.record(time.Since(start))
	return err
}

// result is what a committed write returned, for an *AwaitError or
// *CommittedError that must carry it.
type result struct {
	rowsAffected int64
	columns      []string
	rows         [][]any
}

// committed finishes a write that committed at l: it records l for Track,
// then — unless NoAwait — waits for the local copy to replay it. A wait
// that fails is an *AwaitError carrying the result, or, under
// AwaitTimeoutSucceed, a success that is counted and logged.
func (db *database) committed(ctx context.Context, l lsn.LSN, res func() result) error {
	n := db.n
	if t := tracked(ctx); t != nil && !db.otherCluster() {
		t.record(l)
	}
	if l == 0 || noAwait(ctx) {
		n.counters.skipped.Add(1)
		return nil
	}
	promoted := func() error {
		n.counters.unknownOutcomes.Add(1)
		return fmt.Errorf("%w: the local database was promoted while the write was in flight; the write committed at %s on the primary that took it, which may have been the old one (then it is not in the promoted database) or the promoted one", ErrUnknownOutcome, l)
	}
	if db.writable() {
		// The write was forwarded because the local copy was a standby,
		// and it is the primary now: it was promoted while the write was
		// in flight. The write committed on the old primary; it is in the
		// new one only if this copy had replayed it before the promotion.
		n.counters.skipped.Add(1)
		if db.trackerStarted() && db.tracker.Replayed() >= l {
			return nil
		}
		return promoted()
	}
	n.counters.awaits.Add(1)
	start := time.Now()
	err := db.wait(ctx, l, false)
	if err == nil {
		return nil
	}
	if errors.Is(err, lsn.ErrPromoted) {
		// The tracker saw the promotion before the role check did (the
		// old primary, still up, took the write): the same as above.
		n.requestCheck()
		return promoted()
	}
	n.counters.awaitTimeouts.Add(1)
	if n.cfg.AwaitTimeoutPolicy == AwaitTimeoutSucceed && ctx.Err() == nil {
		n.logAwaitTimeout(db, l, err)
		return nil
	}
	r := res()
	return &AwaitError{LSN: l, Waited: time.Since(start), Err: err, RowsAffected: r.rowsAffected, Columns: r.columns, Rows: r.rows}
}

// logAwaitTimeout warns, at most once a minute, that writes return
// success without having been replayed (AwaitTimeoutSucceed).
func (n *Node) logAwaitTimeout(db *database, l lsn.LSN, err error) {
	now := time.Now().UnixNano()
	last := n.counters.lastAwaitLog.Load()
	if now-last < int64(time.Minute) || !n.counters.lastAwaitLog.CompareAndSwap(last, now) {
		return
	}
	n.cfg.Logger.Warn("flypg: writes returned success without being replayed locally (AwaitTimeoutSucceed)",
		"database", db.name, "lsn", l, "err", err, "count", n.counters.awaitTimeouts.Load())
}
