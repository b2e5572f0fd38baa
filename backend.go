package flypg

import (
	"database/sql/driver"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// backend is the wrapped PostgreSQL driver. flypg adds routing around it and
// never changes what it returns, so everything that is driver-specific lives
// behind this interface (pgx today; lib/pq can slot in).
type backend interface {
	// connector opens connections to the database at dsn.
	connector(dsn string) (driver.Connector, error)
}

// pgxBackend wraps github.com/jackc/pgx/v5/stdlib.
type pgxBackend struct{}

func (pgxBackend) connector(dsn string) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("flypg: parse DSN: %w", err)
	}
	return stdlib.GetConnector(*cfg), nil
}
