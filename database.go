package flypg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/lsn"
)

// database is one database a node serves: its local copy (through the
// wrapped driver), what the node last learned of that copy's role, and,
// outside dev mode, its LSN tracker and the bounded pool that serves
// forwarded work and role checks.
type database struct {
	n          *Node
	primaryURL string // "" when the database was named by its local DSN only
	dsn        string // the local copy
	name       string // the database name, known without connecting
	url        string // the primary's host:port/name, for wire.DB.URL ("" unknown)

	local driver.Connector // the local copy, as the wrapped driver sees it
	conns *connector       // database/sql's connector, with routing

	ident atomic.Pointer[wire.DB] // sysid learned from the local copy
	state atomic.Pointer[dbState]

	poolOnce  sync.Once
	pool      *sql.DB
	poolReady atomic.Bool

	checkOnce sync.Once
	checkDB   *sql.DB // one connection of its own: a saturated serving pool must not read as a dead database

	trackerOnce  sync.Once
	tracker      *lsn.Tracker
	trackerErr   error
	trackerReady atomic.Bool

	outage    atomic.Bool // logged "local database unreachable" for this outage
	downMu    sync.Mutex
	down      chan struct{} // closed when the local copy is found unreachable; replaced after
	primaryAt atomic.Value  // *string: the nodes last seen holding its primary
	closeOnce sync.Once
}

// dbState is what the last role check (or connection attempt) found.
type dbState struct {
	checked   bool // a check succeeded at least once
	reachable bool
	primary   bool // not in recovery
	at        time.Time
	err       error // the last failure, when unreachable
	// replay progress of a standby, for Stats
	replayed  lsn.LSN
	replayAge time.Duration // now - pg_last_xact_replay_timestamp()
	received  lsn.LSN
}

func newDatabase(n *Node, primaryURL, dsn string) (*database, error) {
	name, err := databaseName(dsn)
	if err != nil {
		return nil, err
	}
	local, err := n.backend.Connector(dsn)
	if err != nil {
		return nil, err
	}
	db := &database{n: n, primaryURL: primaryURL, dsn: dsn, name: name, local: local}
	switch {
	case primaryURL != "":
		db.url = identityURL(primaryURL)
	case n.role == rolePrimary:
		db.url = identityURL(dsn) // in the primary region the local copy is the primary
	}
	db.conns = &connector{db: db}
	db.ident.Store(&wire.DB{Name: name, URL: db.url})
	db.state.Store(&dbState{})
	return db, nil
}

// id names the database on the link: its system identifier once the local
// copy has been reached, and its name.
func (db *database) id() wire.DB { return *db.ident.Load() }

// ID implements server.Target.
func (db *database) ID() wire.DB { return db.id() }

// otherCluster reports that db is known to live in another PostgreSQL
// cluster than the node's own database: its WAL positions are not
// comparable with those Track records and tokens carry (which belong to
// the node's own database's cluster — every database of one cluster shares
// its WAL). Not known yet counts as the same.
func (db *database) otherCluster() bool {
	mine, self := db.id().SysID, db.n.self.id().SysID
	return db != db.n.self && mine != 0 && self != 0 && mine != self
}

// matches reports whether a request's database is this one: the same name
// and system identifier — or, from a caller that has not reached its local
// copy yet, the same name and primary URL. A name alone is never enough:
// two clusters may well hold a database of the same name.
func (db *database) matches(id wire.DB) bool {
	mine := db.id()
	switch {
	case id.Name != mine.Name || mine.SysID == 0:
		return false
	case id.SysID != 0:
		return id.SysID == mine.SysID
	}
	return id.URL != "" && id.URL == mine.URL
}

// identityURL reduces a connection string to what names the database it
// reaches: host, port and database name (no credentials, no options).
func identityURL(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return strings.ToLower(cfg.Host) + ":" + strconv.Itoa(int(cfg.Port)) + "/" + cfg.Database
}

// Pool implements server.Target: the local copy through the wrapped
// driver, without routing, bounded by Config.MaxServeConns. Opened on
// first use, so that a node that never serves runs no database/sql
// goroutines for it.
func (db *database) Pool() *sql.DB {
	db.poolOnce.Do(func() {
		db.pool = sql.OpenDB(db.local)
		db.pool.SetMaxOpenConns(db.n.cfg.MaxServeConns)
		// Keep them: a primary-region node serves every region's writes
		// concurrently, and reconnecting per request would cost more than
		// the request.
		db.pool.SetMaxIdleConns(db.n.cfg.MaxServeConns)
		db.pool.SetConnMaxIdleTime(5 * time.Minute)
		db.poolReady.Store(true)
	})
	return db.pool
}

// checker is the connection role checks run on: apart from the serving
// pool, whose bound (back-pressure for forwarded work) could otherwise make
// a busy primary look unreachable and give up its role.
func (db *database) checker() *sql.DB {
	db.checkOnce.Do(func() {
		db.checkDB = sql.OpenDB(db.local)
		db.checkDB.SetMaxOpenConns(1)
		db.checkDB.SetMaxIdleConns(1)
	})
	return db.checkDB
}

// NotPrimary implements server.Target.
func (db *database) NotPrimary() { db.n.requestCheck() }

// writable reports whether the local copy was found to be the primary and
// reachable at the last check. In dev mode every database is used as is.
func (db *database) writable() bool {
	if db.n.role == roleDev {
		return true
	}
	st := db.state.Load()
	return st.reachable && st.primary
}

// reachable reports whether the local copy answered the last check or
// connection attempt.
func (db *database) reachable() bool { return db.n.role == roleDev || db.state.Load().reachable }

func (db *database) describeRole() string {
	st := db.state.Load()
	switch {
	case !st.checked && st.err == nil:
		return "not checked yet"
	case !st.reachable:
		return "unreachable: " + redactErr(st.err, db.dsn)
	case st.primary:
		return "primary"
	}
	return "standby"
}

// lsnTracker is the database's tracker, made on first use.
func (db *database) lsnTracker() (*lsn.Tracker, error) {
	db.trackerOnce.Do(func() {
		db.tracker, db.trackerErr = lsn.NewTracker(lsn.Config{DSN: db.dsn, Logger: db.n.cfg.Logger})
		db.trackerReady.Store(db.trackerErr == nil)
	})
	return db.tracker, db.trackerErr
}

func (db *database) trackerStarted() bool { return db.trackerReady.Load() }
func (db *database) poolStarted() bool    { return db.poolReady.Load() }

// connect opens a local connection for database/sql. Outside dev mode a
// local copy that cannot be reached does not fail the app: the connection
// is detached — its reads go to the primary, its writes as always — and
// database/sql replaces it once the local copy answers again.
func (db *database) connect(ctx context.Context) (driver.Conn, error) {
	if db.n.closed() {
		return nil, ErrNodeClosed
	}
	inner, err := db.local.Connect(ctx)
	if err == nil {
		db.markReachable()
		if db.n.role != roleDev && !db.state.Load().checked {
			// The first connection learns the copy's role and identity
			// before it routes anything, rather than guess.
			if db.check(ctx) {
				db.n.publish()
			}
		}
		return newConn(db, inner), nil
	}
	if db.n.role == roleDev || db.n.closed() || ctx.Err() != nil {
		return nil, err
	}
	db.markUnreachable(err)
	return newConn(db, nil), nil
}

// markUnreachable records a failure to reach the local copy; the first of
// an outage is logged and triggers a role check (which also notices when it
// is back).
func (db *database) markUnreachable(err error) {
	old := db.state.Load()
	if old.reachable || !old.checked || old.err == nil {
		st := *old
		st.reachable, st.err, st.at = false, err, time.Now()
		db.state.Store(&st)
	}
	db.signalDown()
	if !db.outage.Swap(true) {
		db.n.cfg.Logger.Warn("flypg: local database unreachable; reads go to the primary until it is back",
			"database", db.name, "err", redactErr(err, db.dsn))
		db.n.requestCheck()
		db.n.publish()
	}
}

// downSignal returns a channel closed the next time the local copy is
// found unreachable, so that waits on it end at once instead of timing out.
func (db *database) downSignal() <-chan struct{} {
	db.downMu.Lock()
	defer db.downMu.Unlock()
	if db.down == nil {
		db.down = make(chan struct{})
	}
	return db.down
}

func (db *database) signalDown() {
	db.downMu.Lock()
	defer db.downMu.Unlock()
	if db.down != nil {
		close(db.down)
		db.down = nil
	}
}

func (db *database) markReachable() {
	if db.outage.Swap(false) {
		db.n.cfg.Logger.Info("flypg: local database reachable again", "database", db.name)
		db.n.requestCheck()
	}
}

// roleSQL asks the local copy what it is, in one round trip: its role, the
// cluster's system identifier and the database's name (its identity on the
// link), and a standby's replay progress.
const roleSQL = `SELECT pg_catalog.pg_is_in_recovery(),
 (SELECT system_identifier FROM pg_catalog.pg_control_system()),
 pg_catalog.current_database(),
 pg_catalog.pg_last_wal_replay_lsn()::text,
 pg_catalog.pg_last_wal_receive_lsn()::text,
 EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp())::float8`

// check asks the local copy its role; it reports whether anything a peer
// routes by (reachability, role, identity) changed.
func (db *database) check(parent context.Context) bool {
	ctx, cancel := context.WithTimeout(parent, 2*time.Second)
	defer cancel()
	var (
		inRecovery         bool
		sysid              int64
		name               string
		replayed, received sql.NullString
		age                sql.NullFloat64
	)
	err := db.checker().QueryRowContext(ctx, roleSQL).Scan(&inRecovery, &sysid, &name, &replayed, &received, &age)
	old := db.state.Load()
	if err != nil {
		if db.n.closed() || parent.Err() != nil {
			return false // the caller gave up: that says nothing of the database
		}
		st := &dbState{checked: old.checked, err: err, at: time.Now(), primary: old.primary}
		db.state.Store(st)
		db.signalDown()
		if old.reachable || !old.checked {
			db.n.cfg.Logger.Warn("flypg: local database unreachable", "database", db.name, "err", redactErr(err, db.dsn))
		}
		return old.reachable
	}
	st := &dbState{checked: true, reachable: true, primary: !inRecovery, at: time.Now()}
	if replayed.Valid {
		st.replayed, _ = lsn.Parse(replayed.String)
	}
	if received.Valid {
		st.received, _ = lsn.Parse(received.String)
	}
	if age.Valid {
		st.replayAge = time.Duration(age.Float64 * float64(time.Second))
	}
	db.state.Store(st)
	id := wire.DB{SysID: uint64(sysid), Name: name, URL: db.url}
	changed := !old.reachable || old.primary != st.primary || *db.ident.Load() != id
	db.ident.Store(&id)
	if changed {
		role := "standby"
		if st.primary {
			role = "primary"
		}
		level := db.n.cfg.Logger.Info
		if old.checked && old.primary && !st.primary {
			level = db.n.cfg.Logger.Warn
		}
		level("flypg: local database role", "database", name, "role", role, "system", sysid)
		if old.checked && !old.primary && st.primary {
			db.n.cfg.Logger.Warn("flypg: local database was promoted: this node now takes writes for it", "database", name)
		}
	}
	if db.outage.Load() {
		db.markReachable()
	}
	return changed
}

func (db *database) close() error {
	var errs []error
	db.closeOnce.Do(func() {
		db.trackerOnce.Do(func() {})
		if db.tracker != nil {
			errs = append(errs, db.tracker.Close())
		}
		db.poolOnce.Do(func() {})
		if db.pool != nil {
			errs = append(errs, db.pool.Close())
		}
		db.checkOnce.Do(func() {})
		if db.checkDB != nil {
			errs = append(errs, db.checkDB.Close())
		}
	})
	return errors.Join(errs...)
}
