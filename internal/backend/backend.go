// Package backend holds what flypg knows about the driver it wraps: how to
// connect, how its errors and values cross the link, and how the serving
// node runs a forwarded statement so that the caller gets back exactly what
// the wrapped driver would have given it locally.
//
// Two drivers are supported. pgx (the default) forwards a statement the
// way pgx itself would send it: the caller describes the statement and
// encodes its arguments with pgx's own type map, the serving node hands
// those bytes to PostgreSQL unchanged, and the rows come back as
// PostgreSQL sent them, to be decoded on the caller with pgx's stdlib
// conversions. lib/pq ("postgres") takes database/sql driver values, which
// cross the link as typed values (package wire): the serving node hands
// them to its own lib/pq connection, and sends back the driver values and
// column-type answers of lib/pq's rows, and *pq.Error with every field.
package backend

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"

	"github.com/flypg/flypg/internal/wire"
)

// Backend is one wrapped driver.
type Backend interface {
	// Name is the driver's name: "pgx" or "postgres".
	Name() string
	// Connector opens connections to dsn.
	Connector(dsn string) (driver.Connector, error)

	// EncodeError returns the wire form of a database error (every field
	// kept), or nil when err is not one.
	EncodeError(err error) *wire.Error
	// DecodeError rebuilds the driver's own error type from its wire form,
	// or returns nil for kinds that are not the driver's.
	DecodeError(e *wire.Error) error
	// SQLState is err's SQLSTATE, or "" when it has none.
	SQLState(err error) string
	// BeginSQL is the statement that opens a transaction with opts, or the
	// error the driver gives for options it does not support.
	BeginSQL(opts driver.TxOptions) (string, error)

	// Prepare turns a statement and its arguments, as database/sql hands
	// them to the driver, into its wire form. local is the caller's
	// connection to its local database, nil when that is unreachable;
	// describe describes the statement on the primary when local cannot.
	// It fails before anything is sent when an argument cannot be used.
	Prepare(ctx context.Context, local driver.Conn, query string, args []driver.NamedValue, rows bool, describe Describer) (*wire.Statement, error)
	// CheckNamedValue is the driver's argument check, for a connection
	// that has no local driver connection to ask.
	CheckNamedValue(nv *driver.NamedValue) error
	// NonStandardStrings reports that the local session has
	// standard_conforming_strings off (backslashes escape in '…').
	NonStandardStrings(local driver.Conn) bool
	// Decoder returns what turns the rows of a reply into driver values,
	// from the part that described them.
	Decoder(local driver.Conn, described *wire.Part) (RowDecoder, error)

	// Exec runs st on c on the serving node, sending a statement's columns
	// and rows as parts, and returns the rows affected.
	Exec(ctx context.Context, c *sql.Conn, st *wire.Statement, send func(*wire.Part) error) (int64, error)
	// SimpleRow runs text (which may hold several statements) with the
	// simple query protocol on c, in one round trip, and returns the first
	// row of the first result, its values as text (nil for NULL).
	SimpleRow(ctx context.Context, c *sql.Conn, text string) ([]*string, error)
	// QueryThen runs query (one statement, no arguments, which the driver
	// may prepare once per connection) and returns its first row as text,
	// then runs each of after — in one round trip where the driver can
	// pipeline them.
	QueryThen(ctx context.Context, c *sql.Conn, query string, after ...string) ([]*string, error)
	// Commit commits c's open transaction; COMMIT of a failed transaction
	// is the driver's own error for it (pgx.ErrTxCommitRollback,
	// pq.ErrInFailedTransaction).
	Commit(ctx context.Context, c *sql.Conn) error
	// Describe describes query on c.
	Describe(ctx context.Context, c *sql.Conn, query string) (*wire.Description, error)
	// Outcome says what an error from Exec means for the statement.
	Outcome(err error) Outcome
}

// Outcome classifies an error of a statement run on the primary.
type Outcome uint8

const (
	// Answered: PostgreSQL answered with an error (or the driver refused
	// the statement before sending it): it did not commit.
	Answered Outcome = iota
	// NotSent: the connection failed before the statement reached the
	// server; it is safe to run it on another connection.
	NotSent
	// Broken: the connection failed after the statement was sent, before
	// the answer arrived: it may or may not have committed.
	Broken
)

// Describer describes a statement where the caller's local database cannot.
type Describer func(ctx context.Context, query string) (*wire.Description, error)

// RowDecoder turns the rows of a reply into driver values and answers
// database/sql's column questions, as the wrapped driver's own rows would.
type RowDecoder interface {
	Columns() []string
	// Decode fills dest from one row of a part.
	Decode(p *wire.Part, row int, dest []driver.Value) error
	// Rows is the number of rows in p.
	Rows(p *wire.Part) int
	ColumnTypeDatabaseTypeName(i int) string
	ColumnTypeLength(i int) (int64, bool)
	ColumnTypePrecisionScale(i int) (int64, int64, bool)
	ColumnTypeNullable(i int) (bool, bool)
	ColumnTypeScanType(i int) reflect.Type
}

// ForName returns the backend for a driver name ("" is pgx).
func ForName(name string) (Backend, error) {
	switch name {
	case "", "pgx":
		return Pgx{}, nil
	case "postgres":
		return PQ{}, nil
	}
	return nil, fmt.Errorf("flypg: unknown Driver %q: want \"pgx\" or \"postgres\"", name)
}
