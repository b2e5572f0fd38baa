package lsn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults for the zero fields of Config.
const (
	DefaultApplicationName   = "flypg-lsn-tracker"
	DefaultMinPollInterval   = 100 * time.Microsecond
	DefaultMaxPollInterval   = 20 * time.Millisecond
	DefaultMaxReconnectDelay = time.Second
	DefaultWALSignalLinger   = time.Second

	// Deprecated: WaitFunctionAfter has no effect.
	DefaultWaitFunctionAfter = 8 * time.Millisecond
)

// WaitFunction is the signature of the server-side wait function that
// migration 0001 of package migrate installed.
//
// Deprecated: the tracker no longer calls it, and migration 0002 removes it:
// a function that waits inside one query holds a snapshot for the whole
// wait, which stalls replay (see the package documentation).
const WaitFunction = "flypg.wait_for_lsn(pg_lsn,integer)"

const (
	// backoffDivisor sets the client-side poll interval to the age of the
	// smallest pending target divided by this: a waiter that has waited d
	// loses at most d/8 (plus a round trip) to polling granularity.
	backoffDivisor = 8
	// waitForCap bounds one WAIT FOR LSN statement, so that the tracker
	// re-plans at least this often even if no cancel request gets through.
	waitForCap = time.Second
	// firstReconnectDelay starts the backoff after a failed connection
	// attempt or query; it doubles up to Config.MaxReconnectDelay.
	firstReconnectDelay = 5 * time.Millisecond
	connectTimeout      = 10 * time.Second
	// queryTimeout is a last resort against a replica that stops answering
	// without closing the socket: the connection is dropped and reopened.
	queryTimeout = waitForCap + 10*time.Second
)

// ErrClosed is returned by Wait, InRecovery and Refresh once Close has been
// called, including to Waits that were blocked when it was.
var ErrClosed = errors.New("lsn: tracker closed")

// ErrPromoted is returned by Wait for a target the local database had not
// replayed when the tracker saw it promoted (leave recovery): positions
// past that point may belong to the old primary's timeline, which the
// promoted database will never replay — its own WAL goes on from there, so
// comparing positions is meaningless. (Refresh learns the role anew: a
// database back in recovery, rebuilt as a standby, waits again.)
var ErrPromoted = errors.New("lsn: the local database was promoted before it replayed the target")

// Config configures a Tracker. Zero fields take the documented defaults.
type Config struct {
	// DSN is the local database (URL or key=value string, as pgx accepts).
	// Required. The tracker opens one dedicated connection to it, and, for
	// the WAL-arrival signal, one replication connection while it waits.
	DSN string
	// ApplicationName is set on the tracker's connections so that they can
	// be told apart in pg_stat_activity and pg_stat_replication. Default
	// "flypg-lsn-tracker".
	ApplicationName string
	// MinPollInterval is the shortest pause between client-side polls, used
	// while the smallest pending target is young. Default 100 µs.
	MinPollInterval time.Duration
	// MaxPollInterval caps the pause between client-side polls while replay
	// does not reach the smallest pending target. With the WAL-arrival
	// signal, it is also the interval of the safety-net polls made while
	// the signal says the target's WAL has not arrived. Default 20 ms.
	MaxPollInterval time.Duration
	// MaxReconnectDelay caps the backoff between attempts to reopen the
	// connection (and between retries of failed polls). Default 1 s.
	MaxReconnectDelay time.Duration
	// DisableWALSignal turns the WAL-arrival signal off: the tracker then
	// only polls (or uses WAIT FOR LSN on PostgreSQL 19+). The signal costs
	// one of the standby's max_wal_senders slots while it is open and
	// needs the REPLICATION attribute (and a pg_hba.conf "replication"
	// entry) for the DSN's role; without them the tracker polls by itself.
	DisableWALSignal bool
	// WALSignalLinger is how long the signal's replication connection stays
	// open after the last waiter left, so that a burst of writes does not
	// reconnect for each one. Default 1 s.
	WALSignalLinger time.Duration
	// DisableWaitFor stops the tracker from using PostgreSQL 19's
	// WAIT FOR LSN statement where the server has it.
	DisableWaitFor bool
	// Logger receives connection losses and mode changes. Default: discard.
	Logger *slog.Logger
	// PollHook, if set, is called just before each replay query (a poll or
	// a WAIT FOR LSN), and the function it returns just after the query
	// ends. It lets tests observe the poller; it must be fast and must not
	// call the Tracker.
	PollHook func() (done func())

	// Deprecated: the tracker no longer uses a server-side wait function;
	// this field is ignored.
	WaitFunctionAfter time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.DSN == "" {
		return c, errors.New("lsn: Config.DSN is required")
	}
	if c.ApplicationName == "" {
		c.ApplicationName = DefaultApplicationName
	}
	if c.MinPollInterval == 0 {
		c.MinPollInterval = DefaultMinPollInterval
	}
	if c.MaxPollInterval == 0 {
		c.MaxPollInterval = DefaultMaxPollInterval
	}
	if c.MaxReconnectDelay == 0 {
		c.MaxReconnectDelay = DefaultMaxReconnectDelay
	}
	if c.WALSignalLinger == 0 {
		c.WALSignalLinger = DefaultWALSignalLinger
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MinPollInterval < 0 || c.MaxPollInterval < c.MinPollInterval {
		return c, fmt.Errorf("lsn: poll intervals must satisfy 0 < MinPollInterval (%v) <= MaxPollInterval (%v)",
			c.MinPollInterval, c.MaxPollInterval)
	}
	if c.MaxReconnectDelay < 0 {
		return c, fmt.Errorf("lsn: negative MaxReconnectDelay %v", c.MaxReconnectDelay)
	}
	if c.WALSignalLinger < 0 {
		return c, fmt.Errorf("lsn: negative WALSignalLinger %v", c.WALSignalLinger)
	}
	return c, nil
}

// WaitError is returned by Wait when its context ends before the local
// replica has replayed the target. errors.Is(err, context.DeadlineExceeded)
// and errors.Is(err, context.Canceled) see through it.
type WaitError struct {
	Target   LSN           // the LSN waited for
	Replayed LSN           // the last replay position the tracker observed
	Waited   time.Duration // how long Wait blocked
	Err      error         // the context's error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("lsn: replica did not replay %s within %v (last seen at %s): %v",
		e.Target, e.Waited.Round(time.Microsecond), e.Replayed, e.Err)
}

func (e *WaitError) Unwrap() error { return e.Err }

type recoveryState uint8

const (
	recoveryUnknown recoveryState = iota // not connected yet
	recoveryYes                          // a standby: waits poll
	recoveryNo                           // a primary: waits return at once
)

// inflightCall is a WAIT FOR LSN statement in progress, so that a waiter
// that makes it pointless (a smaller target, none left, a Refresh) can
// cancel it.
type inflightCall struct {
	target    LSN
	pg        *pgconn.PgConn
	cancelled bool
}

// Tracker blocks callers until the local database has replayed a given LSN.
// It is safe for concurrent use. See the package documentation for the
// design.
type Tracker struct {
	cfg   Config
	pgcfg *pgx.ConnConfig
	log   *slog.Logger

	ctx    context.Context // ends at Close; bounds every query and sleep
	cancel context.CancelFunc
	wg     sync.WaitGroup // the poller, the signal and cancel-request goroutines

	mu       sync.Mutex // guards the fields below, and the waiters' fields
	closed   bool
	waiters  waiterHeap
	polling  bool // a poller goroutine is running
	recovery recoveryState
	inflight *inflightCall
	sig      signalState

	// kick wakes a sleeping poller when the smallest target changes or the
	// signal has news.
	kick     chan struct{}
	replayed atomic.Uint64
	// promotedAt is where the local database left recovery, when this
	// tracker saw it do so (a promotion): later targets were not replayed.
	promotedAt LSN
	// minEnd is recordEnd of the smallest pending target, published by the
	// poller for the signal (0: nothing pending).
	minEnd atomic.Uint64
	// idleSince is when the poller last stopped for lack of waiters (Unix
	// nanoseconds; 0 while it runs), for the signal's linger.
	idleSince atomic.Int64
	// walBlock and walSegment are the server's WAL page and segment sizes,
	// read by the first probe (zero before), for recordEnd.
	walBlock, walSegment atomic.Uint64
	// serverVersion is server_version_num, read by the probe (0 before).
	serverVersion atomic.Int32

	// connMu guards the dedicated connection: the poller holds it for each
	// query, InRecovery and Refresh for theirs.
	connMu        sync.Mutex
	conn          *pgx.Conn
	lastPoll      time.Time // when the last replay query started; kept across poller runs
	everConnected bool
	failing       bool // the last connection attempt failed (log once per outage)

	stats counters
}

// libpqOnlyOptions are lib/pq connection-string options that pgx does not
// interpret (it would send them to the server as run-time parameters).
var libpqOnlyOptions = []string{"binary_parameters", "disable_prepared_binary_result", "fallback_application_name",
	"sslinline", "ssl_min_protocol_version", "ssl_max_protocol_version", "hostaddr", "load_balance_hosts"}

// NewTracker validates cfg and returns a tracker. It does no I/O: the
// connection is opened by the first Wait, InRecovery or Refresh that needs
// it.
func NewTracker(cfg Config) (*Tracker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pgcfg, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("lsn: parse DSN: %w", err)
	}
	// A DSN written for another driver (lib/pq) may carry options pgx does
	// not know, which it would pass to the server as settings — and the
	// server refuses unknown ones, so the tracker would never connect.
	for _, k := range libpqOnlyOptions {
		delete(pgcfg.RuntimeParams, k)
	}
	pgcfg.RuntimeParams["application_name"] = cfg.ApplicationName
	ctx, cancel := context.WithCancel(context.Background())
	return &Tracker{
		cfg:    cfg,
		pgcfg:  pgcfg,
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
		kick:   make(chan struct{}, 1),
	}, nil
}

// Replayed returns the last replay position observed on the local database
// (zero before the first observation). It does no I/O.
func (t *Tracker) Replayed() LSN { return LSN(t.replayed.Load()) }

// Wait blocks until the local database has replayed target, and returns nil.
// (A target just past a WAL page header counts as reached at the page
// boundary; see the package documentation.)
// It returns nil at once when target is at or below Replayed() — replay
// never moves backwards while a server runs, so an old observation proves
// the data is visible — or when the local database is not in recovery (a
// primary has nothing to wait for) — unless it was a standby promoted
// before it replayed target: then ErrPromoted. When ctx ends first it
// returns a *WaitError; after Close, ErrClosed.
func (t *Tracker) Wait(ctx context.Context, target LSN) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.stats.waits.Add(1)
	// Registering and checking under the same mutex that the poller holds
	// while it publishes an observation and wakes waiters means an
	// observation is either seen here or wakes this waiter: no lost wake-up.
	if t.recovery == recoveryNo || t.recordEnd(target) <= t.Replayed() {
		err := t.afterPromotionLocked(target)
		t.mu.Unlock()
		t.stats.immediate.Add(1)
		return err
	}
	if err := ctx.Err(); err != nil {
		t.mu.Unlock()
		t.stats.timeouts.Add(1)
		return &WaitError{Target: target, Replayed: t.Replayed(), Err: err}
	}
	w := &waiter{target: target, since: time.Now(), done: make(chan struct{})}
	prev := t.waiters.min()
	t.waiters.push(w)
	if prev == nil || target < prev.target {
		t.minChangedLocked()
	}
	if !t.polling {
		t.polling = true
		t.idleSince.Store(0)
		t.wg.Add(1)
		go t.run()
	}
	t.mu.Unlock()

	select {
	case <-w.done:
		if !w.observed.IsZero() {
			t.stats.wakeDelay.Record(time.Since(w.observed))
		}
		return w.err
	case <-ctx.Done():
	}
	t.mu.Lock()
	if w.index < 0 {
		// Woken while giving up: the data is visible, so report success.
		t.mu.Unlock()
		return w.err
	}
	wasMin := t.waiters.min() == w
	t.waiters.remove(w.index)
	if wasMin {
		t.minChangedLocked()
	}
	t.mu.Unlock()
	t.stats.timeouts.Add(1)
	return &WaitError{Target: target, Replayed: t.Replayed(), Waited: time.Since(w.since), Err: ctx.Err()}
}

// minChangedLocked tells the poller that the smallest pending target
// changed: a sleeping poller re-plans at once, and a WAIT FOR LSN for a
// target larger than every pending one (or with none pending) is cancelled
// rather than left to run to its cap.
func (t *Tracker) minChangedLocked() {
	t.kickPoller()
	if m := t.waiters.min(); m == nil || t.inflight == nil || m.target < t.inflight.target {
		t.cancelInflightLocked()
	}
}

func (t *Tracker) kickPoller() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// cancelInflightLocked sends a cancel request for the WAIT FOR LSN in
// flight, if any.
func (t *Tracker) cancelInflightLocked() {
	c := t.inflight
	if c == nil || c.cancelled {
		return
	}
	c.cancelled = true
	// A cancel request opens its own connection to the server, so it must not
	// block the waiter that triggered it. pgx's context-driven cancellation
	// would also do this but then stalls the connection for 100 ms to dodge a
	// race that costs us only one retried statement.
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ctx, cancel := context.WithTimeout(t.ctx, time.Second)
		defer cancel()
		_ = c.pg.CancelRequest(ctx)
	}()
}

// observe publishes a replay observation and wakes the waiters it satisfies.
// fresh marks the first observation on a new connection, which may be lower
// than the last: a replica that crashed can come back with less replayed.
func (t *Tracker) observe(replayed LSN, inRecovery, fresh bool, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !inRecovery {
		if t.recovery != recoveryNo {
			t.log.Info("lsn: local database is not in recovery; waits return at once", "promoted_at", replayed)
		}
		// Seen leaving recovery: a promotion, which reports where replay
		// ended. (Only the change counts: a primary that went through
		// crash recovery reports where that ended too, and a tracker first
		// connecting to a primary cannot tell the two apart.)
		if t.recovery == recoveryYes && replayed != 0 {
			t.promotedAt = replayed
			if replayed > t.Replayed() {
				t.replayed.Store(uint64(replayed))
			}
		}
		t.recovery = recoveryNo
		for t.waiters.min() != nil {
			w := t.waiters.pop()
			t.releaseLocked(w, t.afterPromotionLocked(w.target), at)
		}
		return
	}
	if t.recovery == recoveryNo {
		t.log.Info("lsn: local database is in recovery again; waits wait for replay")
		fresh = true // a rebuilt standby: its replay position starts anew
		t.promotedAt = 0
	}
	t.recovery = recoveryYes
	if fresh || replayed > t.Replayed() {
		t.replayed.Store(uint64(replayed))
	}
	for w := t.waiters.min(); w != nil && t.recordEnd(w.target) <= replayed; w = t.waiters.min() {
		t.releaseLocked(t.waiters.pop(), nil, at)
	}
}

// Sizes of the WAL page headers on 64-bit platforms (SizeOfXLogShortPHD and
// SizeOfXLogLongPHD, MAXALIGNed), unchanged since PostgreSQL 9.3.
const (
	shortPageHeader = 24
	longPageHeader  = 40
)

// recordEnd maps a target to the replay position that proves it reached.
// pg_current_wal_insert_lsn() after a commit whose record ends exactly at a
// WAL page boundary P reports P plus the next page's header, a position no
// record can end at, while replay reports P until some later record arrives
// — on a quiet primary, up to 15 s later. Nothing lies between P and the end
// of the header, so P is the position to wait for.
func (t *Tracker) recordEnd(target LSN) LSN {
	return recordEnd(target, t.walBlock.Load(), t.walSegment.Load())
}

func recordEnd(target LSN, block, segment uint64) LSN {
	if block == 0 || segment == 0 {
		return target // not connected yet: nothing to compare against anyway
	}
	switch off := uint64(target) % block; {
	case off == shortPageHeader:
		return target - shortPageHeader
	case off == longPageHeader && uint64(target)%segment == longPageHeader:
		return target - longPageHeader // the first page of a segment has the long header
	}
	return target
}

// afterPromotionLocked is what a wait for target returns on a database not
// in recovery: nil, or ErrPromoted for a target past its promotion.
func (t *Tracker) afterPromotionLocked(target LSN) error {
	if t.recovery == recoveryNo && t.promotedAt != 0 && t.recordEnd(target) > t.promotedAt {
		return ErrPromoted
	}
	return nil
}

func (t *Tracker) releaseLocked(w *waiter, err error, observed time.Time) {
	w.err, w.observed = err, observed
	close(w.done)
}

// InRecovery reports whether the local database is a standby, as last
// observed. It queries only when the tracker has never connected (then it
// opens the connection); after that it returns the answer of the latest
// observation — a poll, a WAIT FOR LSN, a reconnection or a Refresh —
// without any I/O. An idle tracker makes no observations, so on a node
// whose writes never wait (a primary, or a replica nobody waits on) the
// answer can be arbitrarily old: use Refresh to learn the current role.
func (t *Tracker) InRecovery(ctx context.Context) (bool, error) {
	t.mu.Lock()
	closed, rec := t.closed, t.recovery
	t.mu.Unlock()
	if closed {
		return false, ErrClosed
	}
	if rec != recoveryUnknown {
		return rec == recoveryYes, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.ctx, cancel)()
	t.connMu.Lock()
	defer t.connMu.Unlock()
	if t.conn == nil {
		if err := t.connectLocked(ctx); err != nil {
			return false, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.recovery == recoveryYes, nil
}

// Refresh queries the local database's role now — pg_is_in_recovery(),
// with the replay position — on the tracker's connection, connecting if
// needed, and returns it. It is serialised with the poller's queries (a
// WAIT FOR LSN in flight is cancelled so that Refresh does not wait behind
// it). Like a poll, its answer updates InRecovery and Replayed and wakes
// the waiters it can: a database found not in recovery releases them all.
// Call it after an error that suggests the role changed (SQLSTATE 25006,
// a lost connection) or on a timer; an idle tracker never queries by
// itself.
func (t *Tracker) Refresh(ctx context.Context) (inRecovery bool, err error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false, ErrClosed
	}
	t.cancelInflightLocked()
	t.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.ctx, cancel)()

	t.connMu.Lock()
	defer t.connMu.Unlock()
	t.stats.refreshes.Add(1)
	if t.conn == nil {
		// The probe is itself a fresh observation of the role.
		if err := t.connectLocked(ctx); err != nil {
			return false, fmt.Errorf("lsn: refresh: %w", err)
		}
		return t.cachedRecovery(), nil
	}
	conn := t.conn
	var (
		replay *string
		inRec  bool
	)
	err = conn.QueryRow(ctx, pollSQL).Scan(&replay, &inRec)
	if err == nil {
		var r LSN
		if r, err = parseReplay(replay); err == nil {
			t.observe(r, inRec, false, time.Now())
			return inRec, nil
		}
	}
	if t.ctx.Err() != nil {
		return false, ErrClosed
	}
	if conn.IsClosed() || ctx.Err() != nil {
		// A query abandoned half-way leaves the connection unusable too.
		closeConn(conn)
		t.conn = nil
	}
	return false, fmt.Errorf("lsn: refresh: %w", err)
}

func (t *Tracker) cachedRecovery() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.recovery == recoveryYes
}

// Stats returns a snapshot of the tracker's counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	n := len(t.waiters)
	t.mu.Unlock()
	q := t.stats.wakeDelay.Quantiles(0.50, 0.99)
	return Stats{
		Waits:          t.stats.waits.Load(),
		Immediate:      t.stats.immediate.Load(),
		Timeouts:       t.stats.timeouts.Load(),
		Polls:          t.stats.polls.Load(),
		WaitCalls:      t.stats.waitCalls.Load(),
		PollErrors:     t.stats.pollErrors.Load(),
		Reconnects:     t.stats.reconnects.Load(),
		Refreshes:      t.stats.refreshes.Load(),
		Waiters:        n,
		UsingWaitFor:   t.stats.usingWaitFor.Load(),
		SignalActive:   t.sigStreaming(),
		SignalWakeups:  t.stats.signalWakeups.Load(),
		SignalConnects: t.stats.signalConnects.Load(),
		SignalFailures: t.stats.signalFailures.Load(),
		Mode:           t.modeName(),
		WakeDelayP50:   q[0],
		WakeDelayP99:   q[1],
	}
}

// Close wakes every blocked Wait with ErrClosed, stops the poller and the
// signal and closes their connections. It waits for the tracker's
// goroutines to end. Calling it again does nothing.
func (t *Tracker) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	now := time.Time{}
	for t.waiters.min() != nil {
		t.releaseLocked(t.waiters.pop(), ErrClosed, now)
	}
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()

	t.connMu.Lock()
	defer t.connMu.Unlock()
	if t.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := t.conn.Close(ctx)
	t.conn = nil
	if err != nil {
		return fmt.Errorf("lsn: close connection: %w", err)
	}
	return nil
}
