package flypg

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/internal/server"
	"github.com/flypg/flypg/internal/wire"
	"github.com/flypg/flypg/router"
	"github.com/flypg/flypg/transport"
)

// classifierCacheSize bounds the per-node cache of statement classes. ORMs
// issue a few hundred distinct statements; the cache holds them all.
const classifierCacheSize = 4096

// Node is one running instance of the app: its configuration, its
// databases and (outside dev mode) its place in the cluster.
type Node struct {
	cfg        Config
	role       role
	backend    backend.Backend
	classifier *router.Classifier
	server     *server.Server
	counters   counters
	// txIDs numbers the node's remote transactions; with the link they run
	// on, an id names one transaction on the serving node.
	txIDs atomic.Uint64

	dbs struct {
		sync.Mutex
		byDSN map[string]*database
		list  []*database
	}
	self *database // the node's own database (Config.DatabaseURL / DSN)

	// Outside dev mode:
	transport *transport.Transport
	checks    chan struct{} // wakes the role checker
	bg        sync.WaitGroup
	stop      chan struct{}

	tokenOnce    sync.Once
	tokenKeyring [][]byte

	closeOnce sync.Once
	closeErr  error
	isClosed  atomic.Bool
}

// Start starts a node. It binds the cluster's listeners (outside dev mode)
// but does not connect to any database: like sql.Open, it does not fail
// because a database server is down. The first node started becomes the
// default node that sql.Open("flypg", …) uses.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg, err := cfg.complete()
	dsn, derr := cfg.localDSN()
	if err := errors.Join(err, derr, cfg.validate(true)); err != nil {
		return nil, err // every problem at once
	}
	if dsn == "" {
		return nil, errors.New("flypg: no database: set DATABASE_URL (Config.DatabaseURL) to the primary's URL, or FLYPG_DSN (Config.DSN) to the local database")
	}
	if cfg.NodeName == "" && cfg.role() != roleDev {
		// Named before anything runs that may report the name (the
		// server's goroutines read it without a lock).
		cfg.NodeName = generateNodeName()
	}
	be, err := backend.ForName(cfg.Driver)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, role: cfg.role(), backend: be, classifier: router.NewClassifier(classifierCacheSize),
		checks: make(chan struct{}, 1), stop: make(chan struct{})}
	n.dbs.byDSN = map[string]*database{}
	if n.self, err = n.addDatabase(cfg.DatabaseURL, dsn); err != nil {
		return nil, err
	}
	n.server = server.New(server.Config{
		Backend:       be,
		Databases:     catalog{n},
		Procs:         lookupProc,
		MaxTxPerPeer:  cfg.MaxTxPerPeer,
		TxIdleTimeout: cfg.RemoteTxIdleTimeout,
		Logger:        cfg.Logger,
	})
	if n.role != roleDev {
		if err := n.startCluster(ctx); err != nil {
			n.closeDatabases()
			return nil, err
		}
	}
	setDefaultNode(n)
	return n, nil
}

// OpenDB opens the node's own database: sql.OpenDB(n.Connector()).
func (n *Node) OpenDB() *sql.DB { return sql.OpenDB(n.self.conns) }

// Connector returns a database/sql connector for the node's own database.
func (n *Node) Connector() driver.Connector { return n.self.conns }

// Driver returns a database/sql driver bound to the node:
// Driver().Open(url) and OpenConnector(url) open url's database through n,
// as n.Open does. For wrappers that open connections through a driver.
func (n *Node) Driver() driver.Driver { return &Driver{node: n} }

// Open opens another database through the node: url is that database's
// primary URL. Its local copy is derived like the node's own — the same
// server as an explicit Config.DSN with url's database name, else
// ReplicaURL(url) — and gets its own local connections and LSN tracker.
// Like sql.Open it does no I/O.
func (n *Node) Open(url string) (*sql.DB, error) {
	db, err := n.database(url)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(db.conns), nil
}

// database returns the node's database for a primary URL, adding it on
// first use.
func (n *Node) database(url string) (*database, error) {
	if url == n.cfg.DatabaseURL || url == n.self.dsn {
		return n.self, nil
	}
	dsn, err := n.cfg.localFor(url)
	if err != nil {
		return nil, err
	}
	return n.addDatabase(url, dsn)
}

func (n *Node) addDatabase(primaryURL, dsn string) (*database, error) {
	n.dbs.Lock()
	defer n.dbs.Unlock()
	if n.closed() {
		return nil, ErrNodeClosed
	}
	if db := n.dbs.byDSN[dsn]; db != nil {
		return db, nil
	}
	db, err := newDatabase(n, primaryURL, dsn)
	if err != nil {
		return nil, err
	}
	n.dbs.byDSN[dsn] = db
	n.dbs.list = append(n.dbs.list, db)
	n.requestCheck()
	return db, nil
}

func (n *Node) databases() []*database {
	n.dbs.Lock()
	defer n.dbs.Unlock()
	return append([]*database(nil), n.dbs.list...)
}

// Name is the node's name in the cluster (Config.NodeName, or the one
// generated at start).
func (n *Node) Name() string { return n.cfg.NodeName }

// Region is the node's region.
func (n *Node) Region() string { return n.cfg.Region }

// PrimaryRegion is the region of the primary database ("" in dev mode).
func (n *Node) PrimaryRegion() string { return n.cfg.PrimaryRegion }

// GossipAddr is the membership address the node bound ("" in dev mode).
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

func (n *Node) closed() bool { return n.isClosed.Load() }

// Close leaves the cluster and stops the node's background work: remote
// transactions it serves are rolled back, its trackers and serving pools
// closed. Connections already handed to database/sql keep working against
// their local database, without routing.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.isClosed.Store(true)
		clearDefaultNode(n)
		close(n.stop)
		n.bg.Wait()
		var errs []error
		if n.transport != nil {
			errs = append(errs, n.transport.Close())
		}
		n.server.Close()
		errs = append(errs, n.closeDatabases())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

func (n *Node) closeDatabases() error {
	var errs []error
	for _, db := range n.databases() {
		errs = append(errs, db.close())
	}
	return errors.Join(errs...)
}

// catalog is the node's databases as the server sees them.
type catalog struct{ n *Node }

func (c catalog) Serve(id wire.DB) (server.Target, error) {
	for _, db := range c.n.databases() {
		if db.matches(id) {
			if !db.writable() {
				return nil, fmt.Errorf("%w: node %s's copy of database %s is not the primary (%s)", server.ErrDecline, c.n.Name(), id.Name, db.describeRole())
			}
			return db, nil
		}
	}
	return nil, fmt.Errorf("%w: node %s does not serve database %s (system %d); it serves %s", server.ErrDecline, c.n.Name(), id.Name, id.SysID, c.n.servedNames())
}

func (c catalog) Local() server.Target { return c.n.self }

func (n *Node) servedNames() string {
	var s string
	for i, db := range n.databases() {
		if i > 0 {
			s += ", "
		}
		id := db.id()
		s += fmt.Sprintf("%s (system %d)", id.Name, id.SysID)
	}
	return s
}

// generateNodeName makes a name unique per process start — hostname and a
// random suffix — so a restarted process is a new member rather than a
// ghost of the old one.
func generateNodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return host + "-" + hex.EncodeToString(b[:])
}
