package backend

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/lib/pq"
)

// PQ wraps github.com/lib/pq (Config.Driver "postgres").
//
// lib/pq cannot describe a statement or encode one ahead of time, so it is
// forwarded the way database/sql hands it to the driver: the query text
// and its arguments as driver values (after lib/pq's own CheckNamedValue),
// which the serving node passes to its lib/pq connection unchanged. The
// serving node sends back the driver values and column-type answers its
// lib/pq rows gave, so the caller sees exactly what lib/pq returns there.
type PQ struct{}

var _ Backend = PQ{}

func (PQ) Name() string { return "postgres" }

// Connector returns lib/pq's connector for dsn, its connections wrapped
// (see pqConn) so that a pooled connection idle for a while is checked
// before it is used again, as pgx's stdlib does.
func (PQ) Connector(dsn string) (driver.Connector, error) {
	c, err := pq.NewConnector(dsn)
	if err != nil {
		// lib/pq's parse errors can quote the connection string.
		return nil, ParseError("the database URL", dsn, err)
	}
	return &pqConnector{inner: c}, nil
}

// CheckNamedValue is lib/pq's conn.CheckNamedValue, for a connection that
// has no local lib/pq connection to ask: a Valuer (pq.Array's among them)
// and []byte-like values are left to database/sql's default conversion,
// a slice becomes pq.Array(slice).Value() (its array literal), a uint64
// an int64, or its decimal text from 2^63 on. A connection string's
// binary_parameters=yes (which lets types with a BinaryValue method send
// it) is not seen here: only a local lib/pq connection knows it.
func (PQ) CheckNamedValue(nv *driver.NamedValue) error {
	if _, ok := nv.Value.(driver.Valuer); ok {
		return driver.ErrSkip
	}
	v := reflect.ValueOf(nv.Value)
	if !v.IsValid() {
		return driver.ErrSkip
	}
	t := v.Type()
	for t.Kind() == reflect.Pointer {
		if v.IsNil() {
			// lib/pq would go on and panic on a nil **T; database/sql's
			// conversion makes it NULL.
			return driver.ErrSkip
		}
		t, v = t.Elem(), v.Elem()
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
		return driver.ErrSkip
	}
	switch v.Kind() {
	case reflect.Slice:
		var err error
		nv.Value, err = pq.Array(v.Interface()).Value()
		return err
	case reflect.Uint64:
		if u := v.Uint(); u >= math.MaxInt64 {
			nv.Value = strconv.FormatUint(u, 10)
		} else {
			nv.Value = int64(u)
		}
		return nil
	}
	return driver.ErrSkip
}

// NonStandardStrings is always false: lib/pq keeps the server's
// ParameterStatus messages to itself, and asking the session for every
// statement would cost a round trip. standard_conforming_strings has been
// on by default since PostgreSQL 9.1; a session that turns it off may
// have a string literal lexed differently by the router, which only
// matters when that makes a write look like a read — and then the replica
// refuses it (25006) and it is forwarded after all.
func (PQ) NonStandardStrings(driver.Conn) bool { return false }

// BeginSQL is the statement lib/pq's BeginTx sends.
func (PQ) BeginSQL(opts driver.TxOptions) (string, error) {
	var mode string
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		mode = " ISOLATION LEVEL READ UNCOMMITTED"
	case sql.LevelReadCommitted:
		mode = " ISOLATION LEVEL READ COMMITTED"
	case sql.LevelRepeatableRead:
		mode = " ISOLATION LEVEL REPEATABLE READ"
	case sql.LevelSerializable:
		mode = " ISOLATION LEVEL SERIALIZABLE"
	default:
		return "", fmt.Errorf("pq: isolation level not supported: %d", opts.Isolation)
	}
	if opts.ReadOnly {
		mode += " READ ONLY"
	} else {
		mode += " READ WRITE"
	}
	return "BEGIN" + mode, nil
}

// Outcome reads what the serving node's Exec and Commit found (they mark
// their errors, see pqOutcome): a PostgreSQL error, or lib/pq refusing a
// statement with the connection intact, is answered; a connection already
// broken before anything was sent is not sent; anything else that broke
// the connection — lib/pq reports most of those as driver.ErrBadConn,
// whether or not the statement had left — may have run.
func (PQ) Outcome(err error) Outcome {
	var o *pqOutcome
	var pe *pq.Error
	switch {
	case err == nil, errors.Is(err, pq.ErrInFailedTransaction), errors.As(err, &pe):
		return Answered
	case errors.As(err, &o):
		return o.outcome
	}
	return Broken
}

// pqOutcome marks an error of a statement run on a lib/pq connection with
// what it means for the statement. An answered one crosses the link as
// lib/pq's own error text (it is not a *pq.Error: lib/pq refused the
// statement itself, e.g. a wrong argument count).
type pqOutcome struct {
	err     error
	outcome Outcome
}

func (e *pqOutcome) Error() string { return e.err.Error() }
func (e *pqOutcome) Unwrap() error { return e.err }

// errPQNotSent is lib/pq's answer for a connection found broken before a
// statement was sent on it.
var errPQNotSent = &pqOutcome{err: driver.ErrBadConn, outcome: NotSent}
