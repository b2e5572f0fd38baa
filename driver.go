package flypg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flypg/flypg/internal/backend"
)

// DriverName is the name flypg registers with database/sql.
const DriverName = "flypg"

func init() {
	// A second copy of this package (e.g. vendored twice) must not panic the
	// program: sql.Register panics on a duplicate name.
	if !slices.Contains(sql.Drivers(), DriverName) {
		sql.Register(DriverName, &Driver{})
	}
}

// Driver is flypg's database/sql driver. sql.Open("flypg", url) takes the
// primary's URL — Fly.io's DATABASE_URL, the same string in every region —
// and routes through the process's default node: the first node Started,
// or else one started from the environment (ConfigFromEnv) when the first
// connection is made. Like pgx, sql.Open itself does no I/O: it fails only
// on a URL that does not parse.
//
// A Driver from Node.Driver is bound to that node instead, for wrappers
// that open connections through a driver (ngrok/sqlmw, otelsql's
// WrapDriver).
type Driver struct {
	node *Node // nil: the default node
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open returns a new connection; database/sql prefers OpenConnector.
func (d *Driver) Open(url string) (driver.Conn, error) {
	c, err := d.OpenConnector(url)
	if err != nil {
		return nil, err
	}
	return c.Connect(context.Background())
}

// OpenConnector returns a connector for the database whose primary URL is
// url. It does not connect or start anything.
func (d *Driver) OpenConnector(url string) (driver.Connector, error) {
	if _, err := pgconn.ParseConfig(url); err != nil {
		return nil, backend.ParseError("the database URL", url, err)
	}
	return &lazyConnector{drv: d, url: url}, nil
}

// lazyConnector resolves its database on the default node when the first
// connection is wanted: that is when a node is started from the
// environment, if none was.
type lazyConnector struct {
	drv *Driver
	url string

	mu sync.Mutex
	db *database
}

func (l *lazyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	db, err := l.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return db.connect(ctx)
}

func (l *lazyConnector) Driver() driver.Driver { return l.drv }

func (l *lazyConnector) resolve(ctx context.Context) (*database, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db != nil && !l.db.n.closed() {
		return l.db, nil
	}
	if l.db != nil {
		// Its node was closed (on shutdown): follow a default node the app
		// started since, but never start one again behind its back.
		cur := currentDefault()
		if l.drv.node != nil || cur == nil || cur.closed() {
			return nil, ErrNodeClosed
		}
	}
	n := l.drv.node
	if n == nil {
		var err error
		if n, err = defaultNode(ctx, l.url); err != nil {
			return nil, err
		}
	}
	db, err := n.database(l.url)
	if err != nil {
		return nil, err
	}
	l.db = db
	return db, nil
}

// The default node backs sql.Open("flypg", …). It is the one piece of
// process-wide state besides the registration (and RegisterProc's
// registry), because database/sql gives a driver nothing but a string.
var defaults struct {
	sync.Mutex
	node *Node
	// starting serialises implicit starts so that concurrent first
	// connections in a fresh process share one node instead of racing for
	// its ports.
	starting sync.Mutex
}

func setDefaultNode(n *Node) {
	defaults.Lock()
	defer defaults.Unlock()
	if defaults.node == nil {
		defaults.node = n
	}
}

func clearDefaultNode(n *Node) {
	defaults.Lock()
	defer defaults.Unlock()
	if defaults.node == n {
		defaults.node = nil
	}
}

// DefaultNode returns the process's default node — the first Started, or
// the one sql.Open("flypg", …) started from the environment — or nil. An app
// that never called Start can Close it on shutdown, to leave the cluster at
// once rather than by timing out.
func DefaultNode() *Node { return currentDefault() }

func currentDefault() *Node {
	defaults.Lock()
	defer defaults.Unlock()
	return defaults.node
}

// defaultNode returns the default node, starting one from the environment
// if there is none; url is the node's database when DATABASE_URL is unset.
func defaultNode(ctx context.Context, url string) (*Node, error) {
	if n := currentDefault(); n != nil {
		return n, nil
	}
	defaults.starting.Lock()
	defer defaults.starting.Unlock()
	if n := currentDefault(); n != nil {
		return n, nil
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = url
	}
	return Start(ctx, cfg)
}
