// Package conformance holds the cases that show flypg loses nothing of the
// wrapped driver: the same statements run through a reference *sql.DB (plain
// pgx, or plain lib/pq for Driver "postgres") and through flypg must give
// identical columns, column types, Go values and errors. The root package
// runs them in dev mode against a primary, and through write forwarding
// from a replica region.
package conformance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
)

// Case is one select-list expression with its arguments.
type Case struct {
	Name string
	Expr string // select-list, e.g. "1::int2 AS a, $1::text AS b"
	Args []any
}

var when = time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)

// Cases covers every scalar type family database/sql users meet, NULLs,
// infinities, arrays and argument types.
func Cases() []Case {
	return []Case{
		{"ints", "1::int2 AS a, 2::int4 AS b, 3::int8 AS c, (-32768)::int2 AS d, 2147483647::int4 AS e, (-9223372036854775808)::int8 AS f", nil},
		{"numeric", "123.456::numeric(10,3) AS a, 'NaN'::numeric AS b, 12345678901234567890.0123456789::numeric AS c, 0::numeric AS d", nil},
		{"floats", "1.5::float4 AS a, 2.25::float8 AS b, 'Infinity'::float8 AS c, '-Infinity'::float4 AS d, 'NaN'::float8 AS e", nil},
		{"bool", "true AS a, false AS b", nil},
		{"text", "'héllo ☃'::text AS a, 'abc'::varchar(10) AS b, 'ab'::char(5) AS c, 'nm'::name AS d, ''::text AS e", nil},
		{"bytea", `'\xdeadbeef'::bytea AS a, ''::bytea AS b`, nil},
		{"json", `'{"a": [1, 2, null]}'::json AS a, '{"b": {"c": true}}'::jsonb AS b, 'null'::jsonb AS c`, nil},
		{"uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS a", nil},
		{"date", "'2024-02-29'::date AS a, 'infinity'::date AS b, '-infinity'::date AS c", nil},
		{"timestamp", "'2024-02-29 13:14:15.123456'::timestamp AS a, 'infinity'::timestamp AS b, '-infinity'::timestamp AS c", nil},
		{"timestamptz", "'2024-02-29 13:14:15.123456+02'::timestamptz AS a, 'infinity'::timestamptz AS b, '-infinity'::timestamptz AS c", nil},
		{"time", "'13:14:15.5'::time AS a, '13:14:15+02'::timetz AS b", nil},
		{"interval", "'1 year 2 mons 3 days 04:05:06.7'::interval AS a, '-1 day'::interval AS b", nil},
		{"type modifiers", "'2024-02-29 13:14:15.123456'::timestamp(3) AS a, now()::timestamptz(0) AS b, '13:14:15.5'::time(2) AS c, '13:14:15+02'::timetz(4) AS d, " +
			"'1 day 00:00:01.5'::interval day to second(2) AS e, '3 days'::interval day AS f, 'x'::varchar AS g, B'101'::varbit AS h, B'101'::varbit(5) AS i, 1.5::numeric AS j", nil},
		{"arrays", "ARRAY[1,2,NULL]::int4[] AS a, ARRAY['x', NULL, 'z']::text[] AS b, '{}'::int8[] AS c, ARRAY[[1,2],[3,4]] AS d, ARRAY[true]::bool[] AS e", nil},
		{"nulls", "NULL::int4 AS a, NULL::text AS b, NULL::bytea AS c, NULL::timestamptz AS d, NULL::numeric AS e, NULL::jsonb AS f, NULL AS g", nil},
		{"network", "'192.168.0.1/24'::inet AS a, '10.0.0.0/8'::cidr AS b, '08:00:2b:01:02:03'::macaddr AS c", nil},
		{"misc", "42::oid AS a, 'a=>1'::text AS b, '(1,2)'::point AS c, 1::money AS d, 'x'::\"char\" AS e, B'101'::bit(3) AS f", nil},
		{"ranges", "int4range(1, 10) AS a, '[2024-01-01,2024-02-01)'::daterange AS b", nil},
		{"args scalar", "$1::int8 AS a, $2::text AS b, $3::float8 AS c, $4::bool AS d, $5::bytea AS e, $6::timestamptz AS f",
			[]any{int64(7), "s", 1.25, true, []byte{0, 1, 2}, when}},
		{"args small ints", "$1::int4 AS a, $2::int2 AS b, $3::int8 AS c", []any{int32(5), int16(6), 9}},
		{"args nil", "$1::text IS NULL AS a, $2::int4 AS b", []any{nil, nil}},
		{"args valuer", "$1::text AS a, $2::int8 AS b", []any{sql.NullString{String: "v", Valid: true}, sql.NullInt64{}}},
		{"args slices", "3 = ANY($1::int8[]) AS a, $2::text[] AS b", []any{[]int64{1, 2, 3}, []string{"p", "q"}}},
		{"args time", "$1::date AS a, $2::timestamp AS b", []any{when, when}},
	}
}

// PQCases are arguments in the forms code written for lib/pq passes them:
// its Array Valuers, Go slices (which lib/pq's CheckNamedValue turns into
// array literals), strings and bytes for bytea (lib/pq encodes both by the
// parameter's type), uint64 past int64, times in named locations and in
// Local, NullTime, json.RawMessage. Each also runs on the reference lib/pq
// connection, so whatever lib/pq does with it is the expected answer.
func PQCases() []Case {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	ints := []int{4, 5}
	return []Case{
		{"pq arrays", "$1::int8[] AS a, $2::text[] AS b, $3::bytea[] AS c, $4::bool[] AS d, $5::float8[] AS e, $6::int8[] IS NULL AS f",
			[]any{pq.Array([]int64{1, 2}), pq.StringArray{"x", "y z", `q"uote`}, pq.ByteaArray{{0xde, 0xad}, {}}, pq.BoolArray{true, false}, pq.Float64Array{1.5, -2}, pq.Array([]int64(nil))}},
		{"go slices", "$1::int8[] AS a, $2::text[] AS b, $3::int4[] AS c, $4::float4[] AS d",
			[]any{[]int64{7, 8}, []string{"a", ""}, &ints, []float32{0.5}}},
		{"bytea from string and bytes", "$1::bytea AS a, $2::bytea AS b, $3::bytea AS c, length($4::bytea) AS d",
			[]any{"abc", []byte{0, 0xff, '\\'}, []byte{}, json.RawMessage(`{"k":1}`)}},
		{"text from bytes", "$1::text AS a, $2::jsonb AS b", []any{[]byte("héllo"), json.RawMessage(`{"a": [1, 2]}`)}},
		{"uint64", "$1::numeric AS a, $2::int8 AS b, $3::int4 AS c", []any{uint64(1<<63 + 5), uint64(42), uint32(7)}},
		{"times in zones", "$1::timestamptz AS a, $2::timestamp AS b, $3::timestamptz AS c, $4::date AS d, $5::timestamptz AS e",
			[]any{when.In(ny), when.In(ny), when.Local(), when.In(ny), pq.NullTime{Time: when.In(ny), Valid: true}}},
		{"null kinds", "$1::timestamptz AS a, $2::text AS b, $3::bytea AS c", []any{pq.NullTime{}, sql.NullString{}, []byte(nil)}},
		{"lib/pq result conventions", "12.5::numeric AS a, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS b, '{1,2}'::int4[] AS c, 'infinity'::timestamptz AS d, '13:14:15.5'::time AS e, '13:14:15+02'::timetz AS f, 'x'::char(3) AS g", nil},
	}
}

// Result is everything database/sql shows of a query's result.
type Result struct {
	Columns []string
	Types   []ColumnType
	Rows    [][]any
}

// ColumnType is a *sql.ColumnType's answers.
type ColumnType struct {
	Name             string
	DatabaseTypeName string
	ScanType         string
	Length           int64
	HasLength        bool
	Precision, Scale int64
	HasDecimal       bool
	Nullable         bool
	HasNullable      bool
}

// Query runs query on db and captures the result, with each value as the Go
// type the driver produced.
func Query(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) (*Result, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return Collect(rows)
}

// Collect drains rows into a Result.
func Collect(rows *sql.Rows) (*Result, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	res := &Result{Columns: cols}
	for _, ct := range cts {
		c := ColumnType{Name: ct.Name(), DatabaseTypeName: ct.DatabaseTypeName()}
		if st := ct.ScanType(); st != nil {
			c.ScanType = st.String()
		}
		c.Length, c.HasLength = ct.Length()
		c.Precision, c.Scale, c.HasDecimal = ct.DecimalSize()
		c.Nullable, c.HasNullable = ct.Nullable()
		res.Types = append(res.Types, c)
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, vals)
	}
	return res, rows.Err()
}

// Describe renders a Result with each value's Go type, so that a comparison
// failure shows a type difference (int32 vs int64), not just a value one.
func (r *Result) Describe() []string {
	var out []string
	for _, row := range r.Rows {
		for i, v := range row {
			out = append(out, fmt.Sprintf("%s: %s = %#v", r.Columns[i], reflect.TypeOf(v), v))
		}
	}
	return out
}

// ErrorFields extracts what a caller can learn from a PostgreSQL error, to
// compare errors from two paths. A non-PostgreSQL error yields its text.
func ErrorFields(err error) map[string]string {
	if err == nil {
		return nil
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return map[string]string{"error": err.Error()}
	}
	return map[string]string{
		"Severity": pg.Severity, "Code": pg.Code, "Message": pg.Message, "Detail": pg.Detail,
		"Hint": pg.Hint, "Position": fmt.Sprint(pg.Position), "SchemaName": pg.SchemaName,
		"TableName": pg.TableName, "ColumnName": pg.ColumnName, "ConstraintName": pg.ConstraintName,
		"DataTypeName": pg.DataTypeName, "Where": pg.Where, "Routine": pg.Routine,
	}
}
