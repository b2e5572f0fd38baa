package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flypg/flypg/internal/wire"
)

// Exec runs a forwarded statement as pgx would have run it on the caller:
// the simple protocol for a statement without arguments, else the extended
// protocol with the caller's encoded parameters and result formats. Rows go
// out as PostgreSQL sent them, in parts of bounded size.
func (Pgx) Exec(ctx context.Context, c *sql.Conn, st *wire.Statement, send func(*wire.Part) error) (n int64, err error) {
	if len(st.Values) > 0 {
		return 0, errPgxMixed
	}
	open := false
	defer func() {
		// Once a statement has been handed to an open connection, a failure
		// of that connection leaves its outcome unknown, whatever pgconn
		// says: its MultiResultReader reports a server that died
		// mid-statement as "conn closed", SafeToRetry. (A connection
		// already known dead sends nothing, and is retried elsewhere.)
		var pg *pgconn.PgError
		if err != nil && open && !errors.As(err, &pg) && !errors.Is(err, pgx.ErrTxCommitRollback) {
			err = &brokenError{err}
		}
	}()
	err = pgConn(c, func(pc *pgconn.PgConn) error {
		open = !pc.IsClosed()
		if st.Simple {
			n, err = execSimple(ctx, pc, st, send)
			return err
		}
		p := st.Params
		if p == nil {
			p = &wire.Params{}
		}
		rr := pc.ExecParams(ctx, st.Query, p.Values, p.OIDs, p.Formats, p.Results)
		n, err = readResult(rr, st.Rows, send)
		return err
	})
	return n, err
}

// execSimple runs text that may hold several statements; like pgx's Exec it
// reports the last one's row count. (pgx's Query never uses it for text with
// arguments, and Query without arguments is described, not simple.)
func execSimple(ctx context.Context, pc *pgconn.PgConn, st *wire.Statement, send func(*wire.Part) error) (int64, error) {
	mrr := pc.Exec(ctx, st.Query)
	var n int64
	var first error
	for mrr.NextResult() {
		rows := st.Rows && first == nil
		m, err := readResult(mrr.ResultReader(), rows, send)
		if err != nil && first == nil {
			first = err
		}
		n = m
		if rows {
			// Query returns the first result set only.
			st = &wire.Statement{}
		}
	}
	err := mrr.Close()
	if first != nil {
		err = first
	}
	return n, err
}

// brokenError marks a connection failure after the server had the
// statement: its outcome is unknown, whatever pgconn says.
type brokenError struct{ err error }

func (e *brokenError) Error() string { return e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

// readResult streams one result's rows (when rows is set) and returns its
// row count.
func readResult(rr *pgconn.ResultReader, rows bool, send func(*wire.Part) error) (int64, error) {
	if !rows {
		tag, err := rr.Close()
		return tag.RowsAffected(), err
	}
	fds := rr.FieldDescriptions()
	head := &wire.Part{Described: true, Fields: make([]wire.Field, len(fds))}
	for i, f := range fds {
		head.Fields[i] = wireField(f)
	}
	if err := send(head); err != nil {
		_, _ = rr.Close()
		return 0, err
	}
	part := &wire.Part{}
	size, cells := 0, 0
	for rr.NextRow() {
		vals := rr.Values() // reused by the next NextRow: copy
		row := make([][]byte, len(vals))
		for i, v := range vals {
			if v != nil {
				row[i] = append(make([]byte, 0, len(v)), v...)
				size += len(v)
			}
		}
		part.Raw = append(part.Raw, row)
		if size += 8 * len(vals); size >= wire.MaxPartBytes || cells+len(vals) >= wire.MaxPartCells {
			if err := send(part); err != nil {
				_, _ = rr.Close()
				return 0, err
			}
			part, size, cells = &wire.Part{}, 0, 0
		} else {
			cells += len(vals)
		}
	}
	tag, err := rr.Close()
	if len(part.Raw) > 0 {
		if serr := send(part); serr != nil && err == nil {
			err = serr
		}
	}
	return tag.RowsAffected(), err
}

// SimpleRow runs text with the simple protocol.
func (Pgx) SimpleRow(ctx context.Context, c *sql.Conn, text string) (row []*string, err error) {
	err = pgConn(c, func(pc *pgconn.PgConn) error {
		results, err := pc.Exec(ctx, text).ReadAll()
		if err != nil {
			return err
		}
		if len(results) == 0 || len(results[0].Rows) == 0 {
			return errors.New("flypg: the query returned no row")
		}
		for _, v := range results[0].Rows[0] {
			if v == nil {
				row = append(row, nil)
				continue
			}
			s := string(v)
			row = append(row, &s)
		}
		return nil
	})
	return row, err
}

// QueryThen sends query and after as one pgx batch: one round trip, and
// query prepared once per connection by pgx's statement cache (planning
// the session check each time cost more than running it).
func (Pgx) QueryThen(ctx context.Context, c *sql.Conn, query string, after ...string) (row []*string, err error) {
	err = c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("flypg: the serving pool holds %T, not a pgx connection", dc)
		}
		var b pgx.Batch
		b.Queue(query)
		for _, q := range after {
			b.Queue(q)
		}
		br := sc.Conn().SendBatch(ctx, &b)
		rows, err := br.Query()
		if err == nil {
			if rows.Next() {
				for _, v := range rows.RawValues() {
					if v == nil {
						row = append(row, nil)
						continue
					}
					s := string(v)
					row = append(row, &s)
				}
			}
			rows.Close()
			err = rows.Err()
			if err == nil && row == nil {
				err = errors.New("flypg: the query returned no row")
			}
		}
		for range after {
			if _, e := br.Exec(); e != nil && err == nil {
				err = e
			}
		}
		if e := br.Close(); e != nil && err == nil {
			err = e
		}
		return err
	})
	return row, err
}

// Commit commits as pgx's Tx.Commit does.
func (Pgx) Commit(ctx context.Context, c *sql.Conn) error {
	return pgConn(c, func(pc *pgconn.PgConn) error {
		tag, err := pc.Exec(ctx, "commit").ReadAll()
		if err != nil {
			return err
		}
		if len(tag) > 0 && tag[len(tag)-1].CommandTag.String() == "ROLLBACK" {
			return pgx.ErrTxCommitRollback
		}
		return nil
	})
}

// Describe prepares query as an unnamed statement on c and reports its
// types.
func (Pgx) Describe(ctx context.Context, c *sql.Conn, query string) (*wire.Description, error) {
	var d *wire.Description
	err := pgConn(c, func(pc *pgconn.PgConn) error {
		sd, err := pc.Prepare(ctx, "", query, nil)
		if err != nil {
			return err
		}
		d = &wire.Description{ParamOIDs: sd.ParamOIDs, Fields: make([]wire.Field, len(sd.Fields))}
		for i, f := range sd.Fields {
			d.Fields[i] = wireField(f)
		}
		return nil
	})
	return d, err
}
