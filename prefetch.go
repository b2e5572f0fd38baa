package flypg

import (
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
)

// prefetchLimit bounds how much of a local Unsure statement's result is
// read ahead (see settleUnsure).
const prefetchLimit = 1 << 20

// prefetchedRows are local rows read ahead into memory; they answer column
// questions from the wrapped driver's rows, which stay open until Close.
type prefetchedRows struct {
	inner    driver.Rows
	rows     [][]driver.Value
	next     int
	complete bool  // every row was read ahead
	err      error // what the wrapped rows ended with, when complete
}

// prefetch reads rows ahead up to prefetchLimit. An error on any row read
// ahead is returned (and the rows closed), so that the caller can retry.
func prefetch(inner driver.Rows) (*prefetchedRows, error) {
	p := &prefetchedRows{inner: inner}
	size := 0
	ncol := len(inner.Columns())
	for size < prefetchLimit {
		dest := make([]driver.Value, ncol)
		err := inner.Next(dest)
		if errors.Is(err, io.EOF) {
			p.complete = true
			return p, nil
		}
		if err != nil {
			inner.Close()
			return nil, err
		}
		p.rows = append(p.rows, dest)
		for _, v := range dest {
			size += valueSize(v)
		}
	}
	return p, nil
}

func valueSize(v driver.Value) int {
	switch x := v.(type) {
	case []byte:
		return len(x) + 24
	case string:
		return len(x) + 16
	}
	return 16
}

func (p *prefetchedRows) Columns() []string { return p.inner.Columns() }
func (p *prefetchedRows) Close() error      { p.rows = nil; return p.inner.Close() }

func (p *prefetchedRows) Next(dest []driver.Value) error {
	if p.next < len(p.rows) {
		copy(dest, p.rows[p.next])
		p.rows[p.next] = nil
		p.next++
		return nil
	}
	if p.complete {
		return io.EOF
	}
	return p.inner.Next(dest)
}

func (p *prefetchedRows) ColumnTypeDatabaseTypeName(i int) string {
	if r, ok := p.inner.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return r.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (p *prefetchedRows) ColumnTypeLength(i int) (int64, bool) {
	if r, ok := p.inner.(driver.RowsColumnTypeLength); ok {
		return r.ColumnTypeLength(i)
	}
	return 0, false
}

func (p *prefetchedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if r, ok := p.inner.(driver.RowsColumnTypePrecisionScale); ok {
		return r.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (p *prefetchedRows) ColumnTypeNullable(i int) (bool, bool) {
	if r, ok := p.inner.(driver.RowsColumnTypeNullable); ok {
		return r.ColumnTypeNullable(i)
	}
	return false, false
}

func (p *prefetchedRows) ColumnTypeScanType(i int) reflect.Type {
	if r, ok := p.inner.(driver.RowsColumnTypeScanType); ok {
		return r.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
