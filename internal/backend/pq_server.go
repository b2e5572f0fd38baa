package backend

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/flypg/flypg/internal/wire"
)

// pqDriverConn is what the serving node needs of a pooled connection.
type pqDriverConn interface {
	driver.ExecerContext
	driver.QueryerContext
	driver.Validator
}

// pqRaw runs f on the lib/pq connection under c. A connection lib/pq has
// already marked broken is not used: nothing is sent, and the statement
// may run on another.
func pqRaw(c *sql.Conn, f func(pqDriverConn) error) error {
	return c.Raw(func(dc any) error {
		pc, ok := dc.(pqDriverConn)
		if !ok {
			return fmt.Errorf("flypg: the serving pool holds %T, not a lib/pq connection", dc)
		}
		if !pc.IsValid() {
			return errPQNotSent
		}
		return f(pc)
	})
}

// pqMark says what an error of a statement run on pc means: a *pq.Error (or
// pq.ErrInFailedTransaction) is PostgreSQL's answer; an error lib/pq gave
// with the connection still usable is its refusal of the statement (both
// answered); an error that left the connection broken may have come after
// the statement was sent — lib/pq says driver.ErrBadConn in both cases —
// and stays unmarked (Outcome: broken).
func pqMark(pc driver.Validator, err error) error {
	var pe *pq.Error
	switch {
	case err == nil, errors.As(err, &pe), errors.Is(err, pq.ErrInFailedTransaction):
		return err
	case errors.Is(err, driver.ErrBadConn), !pc.IsValid():
		return err
	}
	return &pqOutcome{err: err, outcome: Answered}
}

// pqMarkStarted marks an error that came once a query's rows had begun:
// PostgreSQL's error (*pq.Error) means the statement failed; any other —
// the reply could not go on to the caller, lib/pq could not decode a
// value — left the statement running to its end as lib/pq's Close drained
// its rows, so a write may have committed.
func pqMarkStarted(err error) error {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return err
	}
	return &pqOutcome{err: err, outcome: Broken}
}

// Exec runs a forwarded statement on the serving node's lib/pq connection
// exactly as lib/pq ran it on the caller: the same text with the same
// driver values (none: lib/pq's simple protocol, several statements
// allowed). A query's columns go out as the answers of lib/pq's rows, its
// rows as the driver values lib/pq decoded, in parts of bounded size; only
// the first result set of a multi-statement query is sent (the rest run).
func (PQ) Exec(ctx context.Context, c *sql.Conn, st *wire.Statement, send func(*wire.Part) error) (n int64, err error) {
	if st.Params != nil {
		return 0, &pqOutcome{err: errMixedDrivers, outcome: Answered}
	}
	var args []driver.NamedValue
	if len(st.Values) > 0 {
		args = make([]driver.NamedValue, len(st.Values))
		for i, v := range st.Values {
			gv, err := v.Go()
			if err != nil {
				return 0, &pqOutcome{err: err, outcome: Answered}
			}
			args[i] = driver.NamedValue{Ordinal: i + 1, Value: gv}
		}
	}
	err = pqRaw(c, func(pc pqDriverConn) error {
		if !st.Rows {
			res, err := pc.ExecContext(ctx, st.Query, args)
			if err == nil {
				n = rowsAffected(res)
			}
			return pqMark(pc, err)
		}
		n, err = pqRunQuery(ctx, pc, st.Query, args, send)
		return err
	})
	return n, err
}

// rowsAffected is lib/pq's count; its result for an empty statement has
// none (an error), which the link carries as 0.
func rowsAffected(res driver.Result) int64 {
	if res == nil {
		return 0
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return n
}

// pqRunQuery streams a query's columns and rows and returns its row count.
// Its errors are marked (see pqMark, pqMarkStarted).
func pqRunQuery(ctx context.Context, pc pqDriverConn, query string, args []driver.NamedValue, send func(*wire.Part) error) (int64, error) {
	rows, err := pc.QueryContext(ctx, query, args)
	if err != nil {
		return 0, pqMark(pc, err)
	}
	n, err := streamRows(rows, send)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, pqMarkStarted(err)
	}
	if r, ok := rows.(interface{ Result() driver.Result }); ok {
		n = rowsAffected(r.Result())
	}
	return n, nil
}

// streamRows sends rows' description and its rows; it returns how many it
// sent. An error from the rows is returned after the rows before it went.
func streamRows(rows driver.Rows, send func(*wire.Part) error) (int64, error) {
	head := &wire.Part{Described: true, Columns: pqColumns(rows)}
	if err := send(head); err != nil {
		return 0, err
	}
	dest := make([]driver.Value, len(head.Columns))
	part := &wire.Part{}
	var n int64
	size, cells := 0, 0
	var rerr error
	for {
		if rerr = rows.Next(dest); rerr != nil {
			break
		}
		row := make([]wire.Value, len(dest))
		for i, v := range dest {
			wv, err := resultValue(v)
			if err != nil {
				rerr = err
				break
			}
			row[i] = wv
			size += len(wv.S) + len(wv.B) + 16
		}
		if rerr != nil {
			break
		}
		n++
		part.Rows = append(part.Rows, row)
		if cells += len(row); size >= wire.MaxPartBytes || cells >= wire.MaxPartCells {
			if err := send(part); err != nil {
				return n, err
			}
			part, size, cells = &wire.Part{}, 0, 0
		}
	}
	if len(part.Rows) > 0 {
		if err := send(part); err != nil && (rerr == nil || rerr == io.EOF) {
			return n, err
		}
	}
	if rerr == io.EOF {
		rerr = nil
	}
	return n, rerr
}

// resultValue is one value of lib/pq's rows on the wire. Its []byte values
// point into the connection's read buffer: copied.
func resultValue(v driver.Value) (wire.Value, error) {
	if b, ok := v.([]byte); ok {
		if b == nil {
			return wire.Value{Kind: wire.KindNull}, nil
		}
		return wire.Value{Kind: wire.KindBytes, B: append(make([]byte, 0, len(b)), b...)}, nil
	}
	return wire.FromGo(v)
}

// pqColumns are the column-type answers of lib/pq's rows, as
// database/sql's ColumnType would give them.
func pqColumns(rows driver.Rows) []wire.Column {
	names := rows.Columns()
	cols := make([]wire.Column, len(names))
	for i, name := range names {
		c := wire.Column{Name: name, ScanType: "interface {}"}
		if x, ok := rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
			c.DatabaseTypeName = x.ColumnTypeDatabaseTypeName(i)
		}
		if x, ok := rows.(driver.RowsColumnTypeScanType); ok {
			c.ScanType = x.ColumnTypeScanType(i).String()
		}
		if x, ok := rows.(driver.RowsColumnTypeLength); ok {
			c.Length, c.HasLength = x.ColumnTypeLength(i)
		}
		if x, ok := rows.(driver.RowsColumnTypePrecisionScale); ok {
			c.Precision, c.Scale, c.HasDecimal = x.ColumnTypePrecisionScale(i)
		}
		if x, ok := rows.(driver.RowsColumnTypeNullable); ok {
			c.Nullable, c.HasNullable = x.ColumnTypeNullable(i)
		}
		cols[i] = c
	}
	return cols
}

// QueryThen runs query and then after, in one simple-protocol round trip.
func (b PQ) QueryThen(ctx context.Context, c *sql.Conn, query string, after ...string) ([]*string, error) {
	return b.SimpleRow(ctx, c, strings.Join(append([]string{query}, after...), "; "))
}

// SimpleRow runs text with lib/pq's simple protocol (a query without
// arguments) and returns the first row of the first result as text. lib/pq
// decodes what it knows (text, integers, booleans, floats, times); those
// are put back into PostgreSQL's text form, the rest is the server's text
// as sent.
func (PQ) SimpleRow(ctx context.Context, c *sql.Conn, text string) (row []*string, err error) {
	err = pqRaw(c, func(pc pqDriverConn) error {
		rows, err := pc.QueryContext(ctx, text, nil)
		if err != nil {
			return pqMark(pc, err)
		}
		dest := make([]driver.Value, len(rows.Columns()))
		nerr := rows.Next(dest)
		if nerr == nil {
			// Before Close: []byte values point into the read buffer.
			for _, v := range dest {
				row = append(row, pqText(v))
			}
		}
		cerr := rows.Close()
		switch {
		case nerr == io.EOF && cerr == nil:
			return errors.New("flypg: the query returned no row")
		case nerr != nil && nerr != io.EOF:
			return pqMark(pc, nerr)
		case cerr != nil:
			row = nil
			return pqMark(pc, cerr)
		}
		return nil
	})
	return row, err
}

func pqText(v driver.Value) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		s = x
	case []byte:
		s = string(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		s = map[bool]string{true: "t", false: "f"}[x]
	case time.Time:
		s = string(pq.FormatTimestamp(x))
	default:
		s = fmt.Sprint(x)
	}
	return &s
}

// Commit ends the transaction as lib/pq's Tx.Commit does: COMMIT, and a
// transaction that a statement had failed (PostgreSQL answers COMMIT with
// ROLLBACK) is pq.ErrInFailedTransaction. The COMMIT runs under ctx, as
// lib/pq's does under BeginTx's context.
func (PQ) Commit(ctx context.Context, c *sql.Conn) error {
	return pqRaw(c, func(pc pqDriverConn) error {
		rows, err := pc.QueryContext(ctx, "COMMIT", nil)
		if err != nil {
			return pqMark(pc, err)
		}
		if err := rows.Close(); err != nil {
			return pqMark(pc, err)
		}
		tag, ok := rows.(interface{ Tag() string })
		if !ok {
			return fmt.Errorf("flypg: lib/pq's rows (%T) do not report the command tag", rows)
		}
		switch tag.Tag() {
		case "COMMIT":
			return nil
		case "ROLLBACK":
			return pq.ErrInFailedTransaction
		}
		return fmt.Errorf("unexpected command tag %s", tag.Tag())
	})
}

// Describe is not something lib/pq can do: its statements are forwarded
// with driver values, which need no description, so no caller asks.
func (PQ) Describe(context.Context, *sql.Conn, string) (*wire.Description, error) {
	return nil, errors.New("flypg: the serving node wraps lib/pq (Driver \"postgres\"), which does not describe statements; a caller wrapping lib/pq never asks, so this one wraps another driver: every node of a cluster must use the same Driver")
}
