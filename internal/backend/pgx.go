package backend

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flypg/flypg/internal/wire"
)

// errPgxMixed refuses a statement or reply in lib/pq's form: every node of
// an app must wrap the same driver.
var errPgxMixed = errors.New("flypg: this node wraps pgx, and the other node lib/pq: every node of a cluster must use the same Config.Driver")

// Pgx wraps github.com/jackc/pgx/v5/stdlib.
type Pgx struct{}

var _ Backend = Pgx{}

func (Pgx) Name() string { return "pgx" }

func (Pgx) Connector(dsn string) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the connection string, password and all.
		return nil, ParseError("the database URL", dsn, err)
	}
	return stdlib.GetConnector(*cfg), nil
}

// EncodeError keeps every field of a PostgreSQL error.
func (Pgx) EncodeError(err error) *wire.Error {
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return &wire.Error{Kind: wire.ErrCommitRollback, Message: err.Error()}
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

// DecodeError rebuilds *pgconn.PgError, so callers that type-assert it (as
// GORM does) see what a local error gives.
func (Pgx) DecodeError(e *wire.Error) error {
	switch e.Kind {
	case wire.ErrCommitRollback:
		return pgx.ErrTxCommitRollback
	case wire.ErrPostgres:
	default:
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

func (Pgx) SQLState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// BeginSQL maps database/sql's options as pgx's stdlib does.
func (Pgx) BeginSQL(opts driver.TxOptions) (string, error) {
	var iso string
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		iso = " isolation level read uncommitted"
	case sql.LevelReadCommitted:
		iso = " isolation level read committed"
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		iso = " isolation level repeatable read"
	case sql.LevelSerializable:
		iso = " isolation level serializable"
	default:
		return "", fmt.Errorf("unsupported isolation: %v", opts.Isolation)
	}
	s := "begin" + iso
	if opts.ReadOnly {
		s += " read only"
	}
	return s, nil
}

// Outcome tells a PostgreSQL error (answered) from a failure of the
// connection, which pgconn knows happened before anything was sent
// (SafeToRetry) or not. A connection pgconn closed because the context
// ended before the server answered is broken too: the statement may have
// committed just before.
func (Pgx) Outcome(err error) Outcome {
	var pg *pgconn.PgError
	var broken *brokenError
	switch {
	case err == nil, errors.Is(err, pgx.ErrTxCommitRollback), errors.As(err, &pg), errors.Is(err, errPgxMixed):
		// (A statement of another driver's form is refused before
		// anything is sent: a definite failure.)
		return Answered
	case errors.As(err, &broken):
		return Broken
	case pgconn.SafeToRetry(err):
		return NotSent
	}
	return Broken
}

// pgConn is the pgconn under a pooled connection of the serving node.
func pgConn(c *sql.Conn, f func(*pgconn.PgConn) error) error {
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("flypg: the serving pool holds %T, not a pgx connection", dc)
		}
		return f(sc.Conn().PgConn())
	})
}
