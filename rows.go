package flypg

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"

	"github.com/flypg/flypg/internal/backend"
	"github.com/flypg/flypg/internal/wire"
)

// bufferLimit is how much of a forwarded write's result (INSERT …
// RETURNING) is held before it is handed over. A result that fits is
// awaited before the caller sees a row, as DESIGN says; a larger one is
// streamed, and the wait happens when its last row has been read (the
// final Next, or Close): memory stays bounded either way.
const bufferLimit = 4 << 20

// remoteRows are the rows of a statement run on the primary, decoded as the
// wrapped driver's own rows would be, arriving as the serving node sends
// them.
type remoteRows struct {
	ctx   context.Context
	c     *conn
	rep   *reply
	tx    *remoteTx // the statement's remote transaction, or nil (autocommit)
	write bool      // an autocommit write: its commit is awaited
	dec   backend.RowDecoder

	queue []*wire.Part // received, not yet read
	cur   *wire.Part
	row   int

	affected int64
	stmtDone bool  // its StmtEnd arrived
	done     bool  // the reply is complete (and, for a write, awaited)
	err      error // what the rows end with, after the last row
}

var (
	_ driver.Rows                           = (*remoteRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*remoteRows)(nil)
	_ driver.RowsColumnTypeLength           = (*remoteRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*remoteRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*remoteRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*remoteRows)(nil)
)

// newRemoteRows reads a reply up to its column description and first rows
// (as pgx's stdlib preloads the first row, an error there is returned now)
// — for a write, up to its end when it fits in bufferLimit, awaiting it.
func newRemoteRows(ctx context.Context, c *conn, rep *reply, write bool, tx *remoteTx) (driver.Rows, error) {
	r := &remoteRows{ctx: ctx, c: c, rep: rep, tx: tx, write: write}
	for r.dec == nil {
		p, err := r.read()
		if err != nil {
			rep.close()
			return nil, err
		}
		if p == nil {
			// It ended before describing anything: r.err says why.
			if r.err != nil {
				return nil, r.err
			}
			r.dec = emptyDecoder{}
			return r, nil
		}
		if p.Described {
			dec, err := c.node().backend.Decoder(c.inner, p)
			if err != nil {
				rep.close()
				return nil, err
			}
			r.dec = dec
		}
	}
	size := 0
	for !r.done && (write || len(r.queue) == 0 && !r.stmtDone) {
		p, err := r.read()
		if err != nil {
			rep.close()
			return nil, err
		}
		if p == nil {
			break
		}
		if len(p.Raw) > 0 || len(p.Rows) > 0 {
			r.queue = append(r.queue, p)
			if size += partSize(p); write && size > bufferLimit {
				break // stream the rest
			}
		}
	}
	for r.stmtDone && !r.done {
		// Only the reply's end is left: take it now.
		if _, err := r.read(); err != nil {
			return nil, err
		}
	}
	if r.done && r.err != nil && (r.write || len(r.queue) == 0) {
		return nil, r.err
	}
	return r, nil
}

// read reads the next part. It returns nil (and sets done and err) once the
// reply has ended, after finishing an autocommit write.
func (r *remoteRows) read() (*wire.Part, error) {
	if r.done {
		return nil, nil
	}
	var p wire.Part
	if err := r.rep.next(r.ctx, r.c.node(), &p); err != nil {
		r.done = true
		return nil, err
	}
	if p.Stmt != nil {
		r.stmtDone, r.affected = true, p.Stmt.RowsAffected
		if p.Stmt.Err != nil {
			r.err = r.c.node().remoteError(r.ctx, p.Stmt.Err)
			if r.tx != nil {
				r.tx.failedErr(r.err)
			}
		}
	}
	if p.End == nil {
		return &p, nil
	}
	r.done = true
	r.rep.close()
	if r.tx != nil {
		r.err = r.tx.ended(r.ctx, p.End, r.err)
		return nil, nil
	}
	r.err = r.c.db.finish(r.ctx, p.End, r.err, func() result {
		return result{rowsAffected: r.affected, columns: r.dec.Columns(), rows: decodeAll(r.dec, r.queue)}
	})
	return nil, nil
}

func partSize(p *wire.Part) int {
	n := 0
	for _, row := range p.Raw {
		for _, v := range row {
			n += len(v) + 8
		}
	}
	for _, row := range p.Rows {
		for _, v := range row {
			n += len(v.S) + len(v.B) + 16
		}
	}
	return n
}

func (r *remoteRows) Columns() []string { return r.dec.Columns() }

func (r *remoteRows) Next(dest []driver.Value) error {
	for r.cur == nil || r.row >= r.dec.Rows(r.cur) {
		r.cur, r.row = nil, 0
		if len(r.queue) > 0 {
			r.cur, r.queue = r.queue[0], r.queue[1:]
			continue
		}
		if r.done {
			if r.err != nil {
				return r.err
			}
			return io.EOF
		}
		p, err := r.read()
		if err != nil {
			r.err = err
			return err
		}
		if p != nil && (len(p.Raw) > 0 || len(p.Rows) > 0) {
			r.cur = p
		}
	}
	err := r.dec.Decode(r.cur, r.row, dest)
	r.row++
	return err
}

// Close ends the rows. An autocommit write's reply is read to its end —
// its outcome and its await are not optional — and so is a remote
// transaction's, whose connection must stay usable; a read's is abandoned.
func (r *remoteRows) Close() error {
	r.queue, r.cur = nil, nil
	if r.done {
		return r.err
	}
	if !r.write && r.tx == nil {
		r.rep.close()
		r.done = true
		return nil
	}
	for !r.done {
		if _, err := r.read(); err != nil {
			return err
		}
	}
	return r.err
}

func (r *remoteRows) ColumnTypeDatabaseTypeName(i int) string {
	return r.dec.ColumnTypeDatabaseTypeName(i)
}
func (r *remoteRows) ColumnTypeLength(i int) (int64, bool) { return r.dec.ColumnTypeLength(i) }
func (r *remoteRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return r.dec.ColumnTypePrecisionScale(i)
}
func (r *remoteRows) ColumnTypeNullable(i int) (bool, bool) { return r.dec.ColumnTypeNullable(i) }
func (r *remoteRows) ColumnTypeScanType(i int) reflect.Type { return r.dec.ColumnTypeScanType(i) }

// emptyDecoder answers for a reply without a row description (a statement
// that failed before describing one, reported by its end).
type emptyDecoder struct{}

func (emptyDecoder) Columns() []string                                 { return nil }
func (emptyDecoder) Decode(*wire.Part, int, []driver.Value) error      { return io.EOF }
func (emptyDecoder) Rows(*wire.Part) int                               { return 0 }
func (emptyDecoder) ColumnTypeDatabaseTypeName(int) string             { return "" }
func (emptyDecoder) ColumnTypeLength(int) (int64, bool)                { return 0, false }
func (emptyDecoder) ColumnTypePrecisionScale(int) (int64, int64, bool) { return 0, 0, false }
func (emptyDecoder) ColumnTypeNullable(int) (bool, bool)               { return false, false }
func (emptyDecoder) ColumnTypeScanType(int) reflect.Type               { return reflect.TypeFor[any]() }
