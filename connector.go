package flypg

import (
	"context"
	"database/sql/driver"
)

// connector is the driver.Connector of one database of a node: every
// connection it makes wraps one of the wrapped driver's to the local copy
// (or, when that is unreachable outside dev mode, none: a detached
// connection that sends everything to the primary).
type connector struct {
	db *database
}

var _ driver.Connector = (*connector)(nil)

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) { return c.db.connect(ctx) }

// Driver is the node's own Driver: opening a URL through it uses this
// connector's node, not the default one.
func (c *connector) Driver() driver.Driver { return c.db.n.Driver() }
