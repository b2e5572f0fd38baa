package flypg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"slices"
	"sync"
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

// Driver is flypg's database/sql driver. sql.Open("flypg", dsn) connects to
// dsn as the local database and routes through the process's default node:
// the first node Started, or else one started from the environment
// (ConfigFromEnv) on first use.
type Driver struct{}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open returns a new connection; database/sql prefers OpenConnector.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	c, err := d.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return c.Connect(context.Background())
}

// OpenConnector returns a connector for dsn on the default node.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	n, err := defaultNode(dsn)
	if err != nil {
		return nil, err
	}
	return n.connectorFor(dsn, d)
}

// The default node backs sql.Open("flypg", …). It is the one piece of
// process-wide state besides the registration, because database/sql gives a
// driver nothing but a DSN string.
var defaults struct {
	sync.Mutex
	node *Node
	// starting serialises implicit starts so that concurrent sql.Open calls
	// in a fresh process share one node instead of racing for its ports.
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

func defaultNode(dsn string) (*Node, error) {
	defaults.starting.Lock()
	defer defaults.starting.Unlock()
	defaults.Lock()
	n := defaults.node
	defaults.Unlock()
	if n != nil {
		return n, nil
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	cfg.DSN = dsn
	return Start(context.Background(), cfg)
}
