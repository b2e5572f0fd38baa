package backend

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/flypg/flypg/internal/wire"
)

// Prepare ships a statement as lib/pq receives it: the text, and the
// arguments database/sql converted (through lib/pq's CheckNamedValue, or
// its default conversion) — nil, int64, float64, bool, []byte, string or
// time.Time. lib/pq encodes them itself, by the parameter types PostgreSQL
// describes, so the serving node's lib/pq stores exactly what this node's
// would; nothing is described here. Like lib/pq, argument names are
// ignored: they bind by position.
func (PQ) Prepare(_ context.Context, _ driver.Conn, query string, named []driver.NamedValue, rows bool, _ Describer) (*wire.Statement, error) {
	st := &wire.Statement{Query: query, Rows: rows}
	if len(named) == 0 {
		// lib/pq runs a statement without arguments with the simple
		// protocol: several statements may be in it.
		st.Simple = true
		return st, nil
	}
	if len(named) > math.MaxUint16 {
		// lib/pq's own check, before anything is sent.
		return nil, fmt.Errorf("pq: got %d parameters but PostgreSQL only supports 65535 parameters", len(named))
	}
	st.Values = make([]wire.Value, len(named))
	for i, a := range named {
		v, err := pqArg(a.Value)
		if err != nil {
			return nil, fmt.Errorf("flypg: argument %d: %w", i+1, err)
		}
		st.Values[i] = v
	}
	return st, nil
}

// pqArg is one driver value on the wire. lib/pq formats a time with its
// zone's offset, which is all of the zone that matters: a time in a named
// location (time.Local among them, which is another place's local time on
// the serving node) crosses as that offset.
func pqArg(v driver.Value) (wire.Value, error) {
	switch x := v.(type) {
	case nil, int64, float64, bool, string:
		return wire.FromGo(x)
	case []byte:
		if x == nil {
			return wire.Value{Kind: wire.KindNull}, nil
		}
		// A pipelined transaction sends it after Exec has returned, when
		// the caller may already reuse its buffer.
		return wire.Value{Kind: wire.KindBytes, B: append(make([]byte, 0, len(x)), x...)}, nil
	case time.Time:
		if x.Location() != time.UTC {
			name, off := x.Zone()
			x = x.In(time.FixedZone(name, off))
		}
		return wire.FromGo(x)
	}
	return wire.Value{}, fmt.Errorf("%w: %T is not a database/sql driver value", wire.ErrUnsupported, v)
}

// Decoder answers for rows a lib/pq serving node sent: its driver values,
// and its rows' column-type answers.
func (PQ) Decoder(_ driver.Conn, p *wire.Part) (RowDecoder, error) {
	if len(p.Fields) > 0 && len(p.Columns) == 0 {
		return nil, errMixedDrivers
	}
	r := &pqRows{cols: p.Columns, names: make([]string, len(p.Columns)), scan: make([]reflect.Type, len(p.Columns))}
	for i, c := range p.Columns {
		r.names[i] = c.Name
		r.scan[i] = pqScanType(c.ScanType)
	}
	return r, nil
}

var errMixedDrivers = fmt.Errorf("flypg: this node wraps lib/pq (Driver %q) and the serving node another driver: every node of a cluster must use the same Driver", "postgres")

// pqRows decodes a lib/pq serving node's rows.
type pqRows struct {
	cols  []wire.Column
	names []string
	scan  []reflect.Type
	locs  wire.Locations
}

func (r *pqRows) Columns() []string { return r.names }

func (r *pqRows) Rows(p *wire.Part) int { return len(p.Rows) }

func (r *pqRows) Decode(p *wire.Part, row int, dest []driver.Value) error {
	if len(p.Raw) > 0 {
		return errMixedDrivers
	}
	vals := p.Rows[row]
	if len(vals) != len(r.cols) {
		return fmt.Errorf("flypg: a forwarded row has %d values for %d columns", len(vals), len(r.cols))
	}
	for i, v := range vals {
		gv, err := v.GoCached(&r.locs)
		if err != nil {
			return fmt.Errorf("flypg: column %d: %w", i, err)
		}
		dest[i] = gv
	}
	return nil
}

func (r *pqRows) ColumnTypeDatabaseTypeName(i int) string { return r.cols[i].DatabaseTypeName }

func (r *pqRows) ColumnTypeLength(i int) (int64, bool) { return r.cols[i].Length, r.cols[i].HasLength }

func (r *pqRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return r.cols[i].Precision, r.cols[i].Scale, r.cols[i].HasDecimal
}

// ColumnTypeNullable: lib/pq's rows do not answer it, so the serving node
// sends "unknown", and database/sql reports that.
func (r *pqRows) ColumnTypeNullable(i int) (bool, bool) {
	return r.cols[i].Nullable, r.cols[i].HasNullable
}

func (r *pqRows) ColumnTypeScanType(i int) reflect.Type { return r.scan[i] }

// pqScanTypes are the scan types lib/pq's rows report, by name.
var pqScanTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, t := range []reflect.Type{
		reflect.TypeFor[int64](), reflect.TypeFor[int32](), reflect.TypeFor[int16](),
		reflect.TypeFor[float64](), reflect.TypeFor[float32](), reflect.TypeFor[string](),
		reflect.TypeFor[bool](), reflect.TypeFor[time.Time](), reflect.TypeFor[[]byte](),
		reflect.TypeFor[any](),
	} {
		m[t.String()] = t
	}
	return m
}()

// pqScanType is the type a serving node named; one lib/pq does not report
// (a newer serving node's) is reported as any, database/sql's own answer
// for a driver that does not know.
func pqScanType(name string) reflect.Type {
	if t, ok := pqScanTypes[name]; ok {
		return t
	}
	return reflect.TypeFor[any]()
}
