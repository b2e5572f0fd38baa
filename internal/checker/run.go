package checker

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/hist"
)

// Config configures a checker run. Only DBs and Primary are required.
type Config struct {
	// DBs are the databases the clients use: client i uses
	// DBs[i%len(DBs)] throughout. Each is normally one flypg node's
	// database in a replica region (node.OpenDB()); a Target without a
	// Node is a plain database — a baseline — on which OpCall runs the
	// procedure's statement directly. Bound the pools (SetMaxOpenConns)
	// as an app would: each client holds at most one connection at a time.
	DBs []*Target
	// Primary is a plain connection (pgx, no flypg) to the primary: it
	// creates the table and, at the end, is read for the verification
	// (Load.Finish may name another, after a failover).
	Primary *sql.DB
	// Clients is the number of concurrent clients. Default 16.
	Clients int
	// Duration is how long the clients run. Default 10s.
	Duration time.Duration
	// Mix weighs the kinds of operation. Default DefaultMix().
	Mix Mix
	// OpTimeout is each operation's deadline. Default 5s.
	OpTimeout time.Duration
	// DeadlineSlack is how far past its deadline a call may return before
	// that is a violation (the scheduler, the race detector). Default 1s.
	DeadlineSlack time.Duration
	// Think is a pause between a client's operations. Default none.
	Think time.Duration
	// TxRows, PipelineRows and CallRows are the rows an OpTx, an
	// OpPipelineTx and an OpCall insert. Defaults 2, 3, 2.
	TxRows, PipelineRows, CallRows int
	// ReadKeys is how many of its writes a read asks about: always the
	// last one acknowledged and the last one made, and random earlier
	// ones. Default 4.
	ReadKeys int
	// HistoryDepth is how many operations of a client's history a
	// violation shows. Default 12.
	HistoryDepth int
	// SampleEvery is how often memory and goroutines are sampled. Default
	// Duration/20, at least 100ms.
	SampleEvery time.Duration
	// Table is the table the rows go to. Default DefaultTable.
	Table string
	// RunID tags this run's rows. Default random.
	RunID string
	// LossAllowed marks writes that may be missing at the end without a
	// violation (see VerifyOptions.LossAllowed). It is also asked, as
	// reads run, about the writes they miss.
	LossAllowed func(*Op) bool
	// MaxFailures caps the failed operations the Report lists in full.
	// Default 2000.
	MaxFailures int
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

// Mix weighs the kinds of operation a client picks from; a zero weight
// leaves the kind out.
type Mix struct {
	Exec, Returning, Tx, PipelineTx, Call, Read, ReadTx int
}

// DefaultMix is a mix of every kind, with about as many reads as writes:
// Exec 3, Returning 2, Tx 2, PipelineTx 1, Call 1, Read 7, ReadTx 1.
func DefaultMix() Mix {
	return Mix{Exec: 3, Returning: 2, Tx: 2, PipelineTx: 1, Call: 1, Read: 7, ReadTx: 1}
}

// WritesOnly is DefaultMix without reads.
func WritesOnly() Mix { return Mix{Exec: 3, Returning: 2, Tx: 2, PipelineTx: 1, Call: 1} }

func (m Mix) weights() []struct {
	k OpKind
	w int
} {
	return []struct {
		k OpKind
		w int
	}{{OpExec, m.Exec}, {OpReturning, m.Returning}, {OpTx, m.Tx}, {OpPipelineTx, m.PipelineTx},
		{OpCall, m.Call}, {OpRead, m.Read}, {OpReadTx, m.ReadTx}}
}

func (m Mix) total() int {
	n := 0
	for _, w := range m.weights() {
		n += max(w.w, 0)
	}
	return n
}

func (c Config) withDefaults() Config {
	if c.Clients <= 0 {
		c.Clients = 16
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Mix.total() == 0 {
		c.Mix = DefaultMix()
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.DeadlineSlack <= 0 {
		c.DeadlineSlack = time.Second
	}
	if c.TxRows <= 0 {
		c.TxRows = 2
	}
	if c.PipelineRows <= 0 {
		c.PipelineRows = 3
	}
	if c.CallRows <= 0 {
		c.CallRows = 2
	}
	if c.ReadKeys <= 0 {
		c.ReadKeys = 4
	}
	if c.HistoryDepth <= 0 {
		c.HistoryDepth = 12
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = max(c.Duration/20, 100*time.Millisecond)
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.RunID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.RunID = hex.EncodeToString(b[:])
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 2000
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if len(c.DBs) == 0 {
		errs = append(errs, errors.New("checker: Config.DBs is empty: give the clients at least one database"))
	}
	for i, t := range c.DBs {
		if t == nil || t.current().db == nil {
			errs = append(errs, fmt.Errorf("checker: Config.DBs[%d] has no *sql.DB", i))
		}
	}
	if c.Primary == nil {
		errs = append(errs, errors.New("checker: Config.Primary is nil: the verification reads the primary directly"))
	}
	if err := checkTable(c.Table); err != nil {
		errs = append(errs, err)
	}
	for _, n := range []int{c.TxRows, c.PipelineRows, c.CallRows} {
		if n > 100 {
			errs = append(errs, fmt.Errorf("checker: %d rows per write: at most 100", n))
		}
	}
	return errors.Join(errs...)
}

// Target is one database the clients use: a name and region for the
// history, the *sql.DB, and the flypg node behind it (for CallPrimary).
// Swap replaces the database and node under running clients, as a rolling
// restart replaces a node; both must serve the same local database, or
// read-your-writes has nothing to hold on to.
type Target struct {
	Name, Region string
	// PassThrough says the target's statements may run on the wrapped
	// driver untouched — a node whose own database is the primary, or a
	// plain database — so an error of no documented kind may be the
	// driver's own ambiguous one (a connection lost mid-statement): its
	// write's outcome is then unknown, not "not committed". A plain
	// database (NewTarget with a nil node) is always PassThrough.
	PassThrough bool

	cur       atomic.Pointer[targetState]
	ok        atomic.Int64 // writes acknowledged with nil
	committed atomic.Int64 // writes acknowledged as committed (nil, *AwaitError, *CommittedError)
}

type targetState struct {
	db   *sql.DB
	node *flypg.Node
	name string // the node's name, for the history
}

// NewTarget returns a Target for db, reached through node (nil for a plain
// database).
func NewTarget(name, region string, db *sql.DB, node *flypg.Node) *Target {
	t := &Target{Name: name, Region: region, PassThrough: node == nil}
	t.Swap(db, node)
	return t
}

// Swap makes new operations use db and node; operations already running
// finish on the old ones.
func (t *Target) Swap(db *sql.DB, node *flypg.Node) {
	st := &targetState{db: db, node: node, name: t.Name}
	if node != nil {
		st.name = node.Name()
	}
	t.cur.Store(st)
}

func (t *Target) current() *targetState { return t.cur.Load() }

// DB is the database new operations use.
func (t *Target) DB() *sql.DB { return t.current().db }

// Node is the node new operations use (nil for a plain database).
func (t *Target) Node() *flypg.Node { return t.current().node }

// OKWrites is how many writes through t were acknowledged with nil.
func (t *Target) OKWrites() int64 { return t.ok.Load() }

// CommittedWrites is how many writes through t were acknowledged as
// committed: nil, *AwaitError or *CommittedError.
func (t *Target) CommittedWrites() int64 { return t.committed.Load() }

// Load is a running checker: Start returns it, Finish verifies it.
type Load struct {
	cfg     Config
	started time.Time
	clients []*client
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	bg      sync.WaitGroup
	done    chan struct{} // clients have finished

	progress chan struct{} // a write was acknowledged

	lat               latencies
	writeLat, readLat hist.Histogram

	samples struct {
		sync.Mutex
		list []Sample
	}
	finished atomic.Bool
	before   Sample
}

// Run runs the checker for cfg.Duration and verifies it against
// cfg.Primary: Start, then Finish. The error is for a run that could not
// be made (setup); violations are in the Report (Report.Err).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	l, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return l.Finish(ctx, nil)
}

// Start creates the table (if needed), makes sure every target sees it,
// and starts the clients; they run for Config.Duration, until Stop, or
// until ctx ends.
func Start(ctx context.Context, cfg Config) (*Load, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if _, err := cfg.Primary.ExecContext(ctx, createSQL(cfg.Table)); err != nil {
		return nil, fmt.Errorf("checker: create table %s on the primary: %w", cfg.Table, err)
	}
	// An awaited write through each target: once it returns, that target's
	// local database has the table too.
	for _, t := range cfg.DBs {
		st := t.current()
		if _, err := st.db.ExecContext(ctx, insertSQL(cfg.Table), cfg.RunID, -1, 0, 0, "setup"); err != nil {
			return nil, fmt.Errorf("checker: setup write through %s: %w", t.Name, err)
		}
	}
	l := &Load{cfg: cfg, started: time.Now(), stop: make(chan struct{}), done: make(chan struct{}),
		progress: make(chan struct{}, 1)}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	for i := range cfg.Clients {
		c := newClient(l, i, cfg.DBs[i%len(cfg.DBs)], uint64(seed[0])<<56|uint64(i))
		l.clients = append(l.clients, c)
	}
	l.before = l.sample(false)
	l.bg.Add(1)
	go l.sampler(ctx)
	for _, c := range l.clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c.run(ctx)
		}()
	}
	go func() {
		timer := time.NewTimer(cfg.Duration)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-l.stop:
		case <-ctx.Done():
		}
		l.Stop()
	}()
	go func() {
		l.wg.Wait()
		close(l.done)
	}()
	cfg.logf("checker: run %s: %d clients on %d database(s) for %v", cfg.RunID, cfg.Clients, len(cfg.DBs), cfg.Duration)
	return l, nil
}

func (c Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// Stop ends the run early: clients finish the operation they are in and
// stop.
func (l *Load) Stop() { l.stopped.Do(func() { close(l.stop) }) }

// Done is closed once every client has stopped.
func (l *Load) Done() <-chan struct{} { return l.done }

// Now is the current offset from the run's start, the time base of every
// Op.
func (l *Load) Now() time.Duration { return time.Since(l.started) }

// Offset converts a wall-clock time to the run's time base.
func (l *Load) Offset(t time.Time) time.Duration { return t.Sub(l.started) }

// OKWrites is how many writes were acknowledged with nil so far.
func (l *Load) OKWrites() int64 {
	var n int64
	for _, t := range l.cfg.DBs {
		n += t.OKWrites()
	}
	return n
}

// WaitOK waits until n more writes than now have been acknowledged with
// nil through the targets (all of them when none is named): the event a
// fault test waits for before it strikes, or after it heals.
func (l *Load) WaitOK(ctx context.Context, n int64, targets ...*Target) error {
	return l.wait(ctx, n, "acknowledged", (*Target).OKWrites, targets)
}

// WaitCommitted is WaitOK counting every write acknowledged as committed
// (nil, *AwaitError, *CommittedError): where the local database cannot be
// awaited, the first successful write is an *AwaitError.
func (l *Load) WaitCommitted(ctx context.Context, n int64, targets ...*Target) error {
	return l.wait(ctx, n, "committed", (*Target).CommittedWrites, targets)
}

func (l *Load) wait(ctx context.Context, n int64, what string, count func(*Target) int64, targets []*Target) error {
	if len(targets) == 0 {
		targets = l.cfg.DBs
	}
	sum := func() int64 {
		var s int64
		for _, t := range targets {
			s += count(t)
		}
		return s
	}
	goal := sum() + n
	tick := time.NewTicker(50 * time.Millisecond) // in case two waiters share a wake-up
	defer tick.Stop()
	for sum() < goal {
		select {
		case <-ctx.Done():
			return fmt.Errorf("checker: waiting for %d %s writes (have %d of them): %w", n, what, n-(goal-sum()), ctx.Err())
		case <-l.done:
			if sum() < goal {
				return fmt.Errorf("checker: the run ended after %d of %d %s writes", n-(goal-sum()), n, what)
			}
		case <-l.progress:
		case <-tick.C:
		}
	}
	return nil
}

func (l *Load) acked(t *Target, ok bool) {
	t.committed.Add(1)
	if ok {
		t.ok.Add(1)
	}
	select {
	case l.progress <- struct{}{}:
	default:
	}
}

// Sample is the process's memory and goroutines at one moment of a run.
type Sample struct {
	At         time.Duration `json:"at"`
	HeapAlloc  uint64        `json:"heap_alloc"`
	HeapInuse  uint64        `json:"heap_inuse"`
	Sys        uint64        `json:"sys"`
	Goroutines int           `json:"goroutines"`
	Ops        int64         `json:"ops"`
	// HistoryBytes estimates the memory the checker's own history holds
	// (it grows with the run; the node's memory is HeapAlloc minus it).
	HistoryBytes uint64 `json:"history_bytes"`
}

func (l *Load) sampler(ctx context.Context) {
	defer l.bg.Done()
	tick := time.NewTicker(l.cfg.SampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			l.sample(true)
		case <-l.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (l *Load) sample(keep bool) Sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := Sample{At: l.Now(), HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, Sys: ms.Sys, Goroutines: runtime.NumGoroutine()}
	for _, c := range l.clients {
		ops, bytes := c.size()
		s.Ops += ops
		s.HistoryBytes += bytes
	}
	if keep {
		l.samples.Lock()
		l.samples.list = append(l.samples.list, s)
		l.samples.Unlock()
	}
	return s
}

// Finish waits for the clients to stop (Config.Duration, Stop, or ctx),
// reads the primary — primary, or Config.Primary when nil — and verifies
// the run. Call it once.
func (l *Load) Finish(ctx context.Context, primary *sql.DB) (*Report, error) {
	if !l.finished.CompareAndSwap(false, true) {
		return nil, errors.New("checker: Finish called twice")
	}
	<-l.done
	l.bg.Wait()
	elapsed := l.Now()
	after := l.sample(false)
	if primary == nil {
		primary = l.cfg.Primary
	}
	rows, err := readRows(ctx, primary, l.cfg.Table, l.cfg.RunID)
	if err != nil {
		return nil, err
	}
	r := l.report(elapsed, rows)
	r.Before, r.After = l.before, after
	l.cfg.logf("checker: run %s: %s", l.cfg.RunID, r.Summary())
	return r, nil
}

func readRows(ctx context.Context, db *sql.DB, table, run string) (Rows, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rs, err := db.QueryContext(ctx, finalSQL(table), run)
	if err != nil {
		return nil, fmt.Errorf("checker: read the primary: %w", err)
	}
	defer rs.Close()
	rows := Rows{}
	for rs.Next() {
		var k Key
		var n int
		if err := rs.Scan(&k.Client, &k.Seq, &k.Idx, &n); err != nil {
			return nil, fmt.Errorf("checker: read the primary: %w", err)
		}
		rows[k] = n
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("checker: read the primary: %w", err)
	}
	return rows, nil
}
