package flypg

import (
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"io"
	"net"
	"reflect"
	"time"

	"github.com/flypg/flypg/internal/wire"
)

// remoteRows are the rows of a statement run on the primary, already
// received in full. They answer every column-type question the way the
// wrapped driver's rows did on the primary.
type remoteRows struct {
	cols  []wire.Column
	names []string
	rows  [][]wire.Value
	next  int
}

var (
	_ driver.Rows                           = (*remoteRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*remoteRows)(nil)
	_ driver.RowsColumnTypeLength           = (*remoteRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*remoteRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*remoteRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*remoteRows)(nil)
)

func newRemoteRows(res *wire.Result) *remoteRows {
	r := &remoteRows{cols: res.Columns, rows: res.Rows, names: make([]string, len(res.Columns))}
	for i, c := range res.Columns {
		r.names[i] = c.Name
	}
	return r
}

func (r *remoteRows) Columns() []string { return r.names }
func (r *remoteRows) Close() error      { r.rows, r.next = nil, 0; return nil }

func (r *remoteRows) Next(dest []driver.Value) error {
	if r.next >= len(r.rows) {
		return io.EOF
	}
	row := r.rows[r.next]
	r.rows[r.next] = nil // let the GC have rows already read
	r.next++
	for i := range dest {
		if i >= len(row) {
			dest[i] = nil
			continue
		}
		v, err := row[i].Go()
		if err != nil {
			return err
		}
		dest[i] = v
	}
	return nil
}

func (r *remoteRows) ColumnTypeDatabaseTypeName(i int) string { return r.cols[i].DatabaseTypeName }

func (r *remoteRows) ColumnTypeLength(i int) (int64, bool) {
	return r.cols[i].Length, r.cols[i].HasLength
}

func (r *remoteRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	c := r.cols[i]
	return c.Precision, c.Scale, c.HasDecimal
}

func (r *remoteRows) ColumnTypeNullable(i int) (bool, bool) {
	return r.cols[i].Nullable, r.cols[i].HasNullable
}

func (r *remoteRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := scanTypes[r.cols[i].ScanType]; ok {
		return t
	}
	return anyType
}

var anyType = reflect.TypeFor[any]()

// scanTypes maps the scan types drivers report back to reflect.Types; a
// type outside it comes back as interface{}.
var scanTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, t := range []reflect.Type{
		reflect.TypeFor[bool](), reflect.TypeFor[string](), reflect.TypeFor[[]byte](),
		reflect.TypeFor[int](), reflect.TypeFor[int8](), reflect.TypeFor[int16](), reflect.TypeFor[int32](), reflect.TypeFor[int64](),
		reflect.TypeFor[uint](), reflect.TypeFor[uint8](), reflect.TypeFor[uint16](), reflect.TypeFor[uint32](), reflect.TypeFor[uint64](),
		reflect.TypeFor[float32](), reflect.TypeFor[float64](), reflect.TypeFor[time.Time](), reflect.TypeFor[time.Duration](),
		reflect.TypeFor[sql.NullBool](), reflect.TypeFor[sql.NullString](), reflect.TypeFor[sql.NullInt16](), reflect.TypeFor[sql.NullInt32](),
		reflect.TypeFor[sql.NullInt64](), reflect.TypeFor[sql.NullFloat64](), reflect.TypeFor[sql.NullTime](), reflect.TypeFor[sql.RawBytes](),
		reflect.TypeFor[json.RawMessage](), reflect.TypeFor[net.IP](), reflect.TypeFor[any](),
	} {
		m[t.String()] = t
	}
	return m
}()

func scanTypeName(t reflect.Type) string {
	if t == nil {
		return ""
	}
	return t.String()
}
