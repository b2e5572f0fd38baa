package flypg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"os"
	"sync"
	"sync/atomic"

	"github.com/flypg/flypg/lsn"
	"github.com/flypg/flypg/router"
	"github.com/flypg/flypg/transport"
)

// serveIdleConns is how many idle primary connections a node keeps for the
// statements and procedures it serves.
const serveIdleConns = 64

// classifierCacheSize bounds the per-node cache of statement classes. ORMs
// issue a few hundred distinct statements; the cache holds them all.
const classifierCacheSize = 4096

// Node is one running instance of the app: its configuration, its local
// database and (outside dev mode) its place in the cluster.
type Node struct {
	cfg        Config
	role       role
	backend    backend
	local      driver.Connector // the local database, as the wrapped driver sees it
	conns      *connector
	dbOnce     sync.Once
	db         *sql.DB // the local database without routing; see localDB
	server     *server
	counters   counters
	classifier *router.Classifier

	// Outside dev mode:
	transport    *transport.Transport
	tracker      *lsn.Tracker
	primaryState atomic.Pointer[primaryState]
	checking     atomic.Bool
	bg           struct { // background refreshes, waited for by Close
		sync.Mutex
		wg     sync.WaitGroup
		closed bool
	}

	closeOnce sync.Once
	closeErr  error
}

// Start starts a node. In dev mode (no PRIMARY_REGION) it only prepares the
// pass-through driver. The first node started becomes the default node that
// sql.Open("flypg", …) uses.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if cfg.DSN == "" {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			if _, err := ReplicaURL(u, cfg.Region, cfg.PrimaryRegion); err != nil {
				return nil, err
			}
		}
		return nil, errors.New("flypg: no local database: set Config.DSN, FLYPG_DSN or DATABASE_URL")
	}
	n := &Node{cfg: cfg, role: cfg.role(), backend: pgxBackend{}, classifier: router.NewClassifier(classifierCacheSize)}
	local, err := n.backend.connector(cfg.DSN)
	if err != nil {
		return nil, err
	}
	n.local = local
	n.conns = &connector{node: n, inner: local, driver: &Driver{}}
	n.server = newServer(n)
	if n.role != roleDev {
		if err := n.startCluster(ctx); err != nil {
			return nil, err
		}
	}
	setDefaultNode(n)
	return n, nil
}

// Connector returns a database/sql connector for the node's local database:
// sql.OpenDB(n.Connector()).
func (n *Node) Connector() driver.Connector { return n.conns }

// OpenDB is sql.OpenDB(n.Connector()).
func (n *Node) OpenDB() *sql.DB { return sql.OpenDB(n.conns) }

// connectorFor serves sql.Open("flypg", dsn): the node's routing with dsn as
// the local database.
func (n *Node) connectorFor(dsn string, d *Driver) (driver.Connector, error) {
	if dsn == n.cfg.DSN {
		return &connector{node: n, inner: n.local, driver: d}, nil
	}
	local, err := n.backend.connector(dsn)
	if err != nil {
		return nil, err
	}
	return &connector{node: n, inner: local, driver: d}, nil
}

// localDB is the local database through the wrapped driver, without
// routing: it serves forwarded work and procedures. Opened on first use, so
// a node that never serves (dev mode) runs no database/sql goroutines.
func (n *Node) localDB() *sql.DB {
	n.dbOnce.Do(func() {
		n.db = sql.OpenDB(n.local)
		// A primary-region node serves every replica region's writes
		// concurrently; database/sql's default of 2 idle connections
		// would close and reopen primary connections under load.
		n.db.SetMaxIdleConns(serveIdleConns)
	})
	return n.db
}

// Name is the node's name in the cluster (Config.NodeName, or the one
// generated at start).
func (n *Node) Name() string { return n.cfg.NodeName }

// Region is the node's region.
func (n *Node) Region() string { return n.cfg.Region }

// PrimaryRegion is the region of the primary database.
func (n *Node) PrimaryRegion() string { return n.cfg.PrimaryRegion }

// Close leaves the cluster and stops the node's background work. Connections
// already handed to database/sql keep working against the local database.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		clearDefaultNode(n)
		n.closeErr = n.stopCluster()
	})
	return n.closeErr
}

// connector is the driver.Connector of a node: it wraps every connection the
// wrapped driver opens.
type connector struct {
	node   *Node
	inner  driver.Connector
	driver driver.Driver
}

var _ driver.Connector = (*connector)(nil)

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	inner, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newConn(c.node, inner), nil
}

func (c *connector) Driver() driver.Driver { return c.driver }
