package flypg

import (
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flypg/flypg/internal/wire"
)

// backend is the wrapped PostgreSQL driver. flypg adds routing around it and
// never changes what it returns, so everything that is driver-specific lives
// behind this interface (pgx today; lib/pq can slot in).
type backend interface {
	// connector opens connections to the database at dsn.
	connector(dsn string) (driver.Connector, error)
	// encodeError returns the wire form of a database error, or nil when
	// err is not one.
	encodeError(err error) *wire.Error
	// decodeError returns the driver's own error type for a wire error of
	// kind wire.ErrPostgres, or nil for other kinds.
	decodeError(e *wire.Error) error
	// sqlState is err's SQLSTATE, or "" when err is not a database error.
	sqlState(err error) string
}

// errKindCommitRollback carries pgx.ErrTxCommitRollback: COMMIT of a
// transaction that had failed, which PostgreSQL answers with ROLLBACK.
const errKindCommitRollback = "pgx.commit-rollback"

// pgxBackend wraps github.com/jackc/pgx/v5/stdlib.
type pgxBackend struct{}

func (pgxBackend) connector(dsn string) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("flypg: parse DSN: %w", err)
	}
	return stdlib.GetConnector(*cfg), nil
}

// encodeError turns an error from the wrapped driver into its wire form,
// keeping every field of a PostgreSQL error.
func (pgxBackend) encodeError(err error) *wire.Error {
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return &wire.Error{Kind: errKindCommitRollback, Message: err.Error()}
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return nil
	}
	return &wire.Error{
		Kind:    wire.ErrPostgres,
		Message: pg.Error(),
		PG: map[string]string{
			"S": pg.Severity, "V": pg.SeverityUnlocalized, "C": pg.Code, "M": pg.Message,
			"D": pg.Detail, "H": pg.Hint, "q": pg.InternalQuery, "W": pg.Where,
			"s": pg.SchemaName, "t": pg.TableName, "c": pg.ColumnName, "d": pg.DataTypeName,
			"n": pg.ConstraintName, "F": pg.File, "R": pg.Routine,
		},
		Line: pg.Line, Pos: pg.Position, IPos: pg.InternalPosition,
	}
}

// decodeError rebuilds the wrapped driver's own error type, so callers that
// type-assert (*pgconn.PgError, as GORM does) see what a local error gives.
func (pgxBackend) decodeError(e *wire.Error) error {
	if e.Kind == errKindCommitRollback {
		return pgx.ErrTxCommitRollback
	}
	if e.Kind != wire.ErrPostgres {
		return nil
	}
	f := e.PG
	return &pgconn.PgError{
		Severity: f["S"], SeverityUnlocalized: f["V"], Code: f["C"], Message: f["M"],
		Detail: f["D"], Hint: f["H"], Position: e.Pos, InternalPosition: e.IPos,
		InternalQuery: f["q"], Where: f["W"], SchemaName: f["s"], TableName: f["t"],
		ColumnName: f["c"], DataTypeName: f["d"], ConstraintName: f["n"], File: f["F"],
		Line: e.Line, Routine: f["R"],
	}
}

func (pgxBackend) sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}
