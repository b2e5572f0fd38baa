package backend

import (
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flypg/flypg/internal/wire"
)

// pgxRows decodes forwarded rows exactly as pgx's stdlib.Rows decodes
// local ones: the same conversion per type OID (a copy of stdlib's
// initValueFuncs, with its scan plans from the caller's type map) and the
// same answers to database/sql's column questions.
type pgxRows struct {
	m      *pgtype.Map
	fields []wire.Field
	names  []string
	funcs  []func(src []byte) (driver.Value, error)
}

// Decoder builds the decoder for a described part.
func (Pgx) Decoder(local driver.Conn, p *wire.Part) (RowDecoder, error) {
	if len(p.Columns) > 0 || len(p.Fields) == 0 && len(p.Rows) > 0 {
		return nil, errPgxMixed
	}
	r := &pgxRows{m: typeMap(local), fields: p.Fields, names: make([]string, len(p.Fields))}
	for i, f := range p.Fields {
		r.names[i] = f.Name
	}
	r.funcs = make([]func([]byte) (driver.Value, error), len(p.Fields))
	for i, f := range p.Fields {
		r.funcs[i] = valueFunc(r.m, f.DataTypeOID, f.Format)
	}
	return r, nil
}

func scanInto[T any](m *pgtype.Map, oid uint32, format int16, conv func(T) (driver.Value, error)) func([]byte) (driver.Value, error) {
	var d T
	plan := m.PlanScan(oid, format, &d)
	return func(src []byte) (driver.Value, error) {
		if err := plan.Scan(src, &d); err != nil {
			return nil, err
		}
		return conv(d)
	}
}

func same[T any](v T) (driver.Value, error) { return v, nil }

func valuer[T driver.Valuer](v T) (driver.Value, error) { return v.Value() }

func valueFunc(m *pgtype.Map, oid uint32, format int16) func([]byte) (driver.Value, error) {
	switch oid {
	case pgtype.BoolOID:
		return scanInto(m, oid, format, same[bool])
	case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
		return scanInto(m, oid, format, same[[]byte])
	case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
		return scanInto(m, oid, format, valuer[pgtype.Uint32])
	case pgtype.DateOID:
		return scanInto(m, oid, format, valuer[pgtype.Date])
	case pgtype.Float4OID:
		return scanInto(m, oid, format, func(v float32) (driver.Value, error) { return float64(v), nil })
	case pgtype.Float8OID:
		return scanInto(m, oid, format, same[float64])
	case pgtype.Int2OID:
		return scanInto(m, oid, format, func(v int16) (driver.Value, error) { return int64(v), nil })
	case pgtype.Int4OID:
		return scanInto(m, oid, format, func(v int32) (driver.Value, error) { return int64(v), nil })
	case pgtype.Int8OID:
		return scanInto(m, oid, format, same[int64])
	case pgtype.TimestampOID:
		return scanInto(m, oid, format, valuer[pgtype.Timestamp])
	case pgtype.TimestamptzOID:
		return scanInto(m, oid, format, valuer[pgtype.Timestamptz])
	}
	return scanInto(m, oid, format, same[string])
}

func (r *pgxRows) Columns() []string { return r.names }

func (r *pgxRows) Rows(p *wire.Part) int { return len(p.Raw) }

func (r *pgxRows) Decode(p *wire.Part, row int, dest []driver.Value) error {
	raw := p.Raw[row]
	if len(raw) != len(r.funcs) {
		return fmt.Errorf("flypg: a forwarded row has %d values for %d columns", len(raw), len(r.funcs))
	}
	for i, rv := range raw {
		if rv == nil {
			dest[i] = nil
			continue
		}
		v, err := r.funcs[i](rv)
		if err != nil {
			return fmt.Errorf("convert field %d failed: %w", i, err)
		}
		dest[i] = v
	}
	return nil
}

func (r *pgxRows) ColumnTypeDatabaseTypeName(i int) string {
	if dt, ok := r.m.TypeForOID(r.fields[i].DataTypeOID); ok {
		return strings.ToUpper(dt.Name)
	}
	return strconv.FormatInt(int64(r.fields[i].DataTypeOID), 10)
}

// varHeaderSize and noTypeModifier are as in pgx's stdlib, whose
// ColumnType answers these follow (pgx v5.13).
const (
	varHeaderSize  = 4
	noTypeModifier = -1
)

func (r *pgxRows) ColumnTypeLength(i int) (int64, bool) {
	f := r.fields[i]
	switch f.DataTypeOID {
	case pgtype.TextOID, pgtype.ByteaOID:
		return math.MaxInt64, true
	case pgtype.VarcharOID, pgtype.BPCharOID:
		if f.TypeModifier == noTypeModifier { // unconstrained: not limited
			return math.MaxInt64, true
		}
		return int64(f.TypeModifier - varHeaderSize), true
	case pgtype.VarbitOID:
		if f.TypeModifier == noTypeModifier {
			return math.MaxInt64, true
		}
		return int64(f.TypeModifier), true
	}
	return 0, false
}

func (r *pgxRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	f := r.fields[i]
	switch f.DataTypeOID {
	case pgtype.NumericOID:
		if f.TypeModifier == noTypeModifier { // any precision and scale
			return 0, 0, false
		}
		mod := f.TypeModifier - varHeaderSize
		return int64((mod >> 16) & 0xffff), int64(mod & 0xffff), true
	case pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.TimeOID, pgtype.TimetzOID:
		// The modifier is the fractional seconds precision, reported as
		// the scale; microseconds when none was declared.
		if f.TypeModifier == noTypeModifier {
			return 0, 6, true
		}
		return 0, int64(f.TypeModifier), true
	case pgtype.IntervalOID:
		// The low 16 bits are the fractional seconds precision, all set
		// when only a field range was declared.
		if f.TypeModifier == noTypeModifier || f.TypeModifier&0xffff == 0xffff {
			return 0, 6, true
		}
		return 0, int64(f.TypeModifier & 0xffff), true
	}
	return 0, 0, false
}

// ColumnTypeNullable: pgx's stdlib does not answer it, so database/sql
// reports "unknown".
func (r *pgxRows) ColumnTypeNullable(int) (bool, bool) { return false, false }

func (r *pgxRows) ColumnTypeScanType(i int) reflect.Type {
	switch r.fields[i].DataTypeOID {
	case pgtype.Float8OID:
		return reflect.TypeFor[float64]()
	case pgtype.Float4OID:
		return reflect.TypeFor[float32]()
	case pgtype.Int8OID:
		return reflect.TypeFor[int64]()
	case pgtype.Int4OID:
		return reflect.TypeFor[int32]()
	case pgtype.Int2OID:
		return reflect.TypeFor[int16]()
	case pgtype.BoolOID:
		return reflect.TypeFor[bool]()
	case pgtype.NumericOID:
		return reflect.TypeFor[float64]()
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return reflect.TypeFor[time.Time]()
	case pgtype.ByteaOID:
		return reflect.TypeFor[[]byte]()
	}
	return reflect.TypeFor[string]()
}
