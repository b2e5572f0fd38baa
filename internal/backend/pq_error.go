package backend

import (
	"errors"
	"reflect"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/flypg/flypg/internal/wire"
)

// Error kinds of lib/pq's own errors on the link.
const (
	// wireFailedTx is pq.ErrInFailedTransaction: COMMIT of a transaction
	// a statement had failed, rolled back instead.
	wireFailedTx = "pq-failed-tx"
	// wirePQRefused is an error lib/pq returned for a statement it
	// refused without breaking the connection (not a *pq.Error), such as
	// "pq: got 1 parameters but the statement requires 2".
	wirePQRefused = "pq-refused"
)

// pqQueryKey carries *pq.Error's unexported query: lib/pq sets it to the
// statement's text, and Error() uses it to say where the error is ("at
// column 8"). It is not a field code PostgreSQL uses.
const pqQueryKey = "pq.query"

// EncodeError keeps every field of a *pq.Error (as PostgreSQL sent them,
// the text of the statement included), and lib/pq's own errors for a
// statement the connection survived. A connection failure is not the
// driver's to encode: the serving node reports it as an unknown outcome,
// or as not sent. driver.ErrBadConn never crosses the link, so the caller's
// database/sql never retries a forwarded write by itself.
func (PQ) EncodeError(err error) *wire.Error {
	if errors.Is(err, pq.ErrInFailedTransaction) {
		return &wire.Error{Kind: wireFailedTx, Message: pq.ErrInFailedTransaction.Error()}
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		return encodePQError(pe)
	}
	var o *pqOutcome
	if errors.As(err, &o) && o.outcome == Answered {
		return &wire.Error{Kind: wirePQRefused, Message: o.err.Error()}
	}
	return nil
}

func encodePQError(pe *pq.Error) *wire.Error {
	f := map[string]string{
		"S": pe.Severity, "C": string(pe.Code), "M": pe.Message, "D": pe.Detail, "H": pe.Hint,
		"P": pe.Position, "p": pe.InternalPosition, "q": pe.InternalQuery, "W": pe.Where,
		"s": pe.Schema, "t": pe.Table, "c": pe.Column, "d": pe.DataTypeName, "n": pe.Constraint,
		"F": pe.File, "L": pe.Line, "R": pe.Routine,
	}
	for k, v := range f {
		if v == "" {
			delete(f, k)
		}
	}
	if q := pqErrQuery(pe); q != "" {
		f[pqQueryKey] = q
	}
	// The numeric fields too, for a caller that wraps pgx (every node
	// should use the same Driver; this keeps a mistake readable).
	return &wire.Error{Kind: wire.ErrPostgres, Message: pe.Error(), PG: f,
		Line: atoi32(pe.Line), Pos: atoi32(pe.Position), IPos: atoi32(pe.InternalPosition)}
}

// DecodeError rebuilds *pq.Error — every field, and the statement text its
// Error() reads — so that code written for lib/pq (err.(*pq.Error),
// errors.As, pq.As) sees what a local error gives; pq.ErrInFailedTransaction
// itself for a COMMIT that rolled back; lib/pq's refusal as the error it
// was (errors.New of the same text).
func (PQ) DecodeError(e *wire.Error) error {
	switch e.Kind {
	case wireFailedTx, wire.ErrCommitRollback:
		return pq.ErrInFailedTransaction
	case wirePQRefused:
		return errors.New(e.Message)
	case wire.ErrPostgres:
	default:
		return nil
	}
	f := e.PG
	pe := &pq.Error{
		Severity: f["S"], Code: pqerror.Code(f["C"]), Message: f["M"], Detail: f["D"], Hint: f["H"],
		Position: f["P"], InternalPosition: f["p"], InternalQuery: f["q"], Where: f["W"],
		Schema: f["s"], Table: f["t"], Column: f["c"], DataTypeName: f["d"], Constraint: f["n"],
		File: f["F"], Line: f["L"], Routine: f["R"],
	}
	// A pgx serving node sends the numbers as numbers.
	if pe.Position == "" && e.Pos != 0 {
		pe.Position = strconv.Itoa(int(e.Pos))
	}
	if pe.InternalPosition == "" && e.IPos != 0 {
		pe.InternalPosition = strconv.Itoa(int(e.IPos))
	}
	if pe.Line == "" && e.Line != 0 {
		pe.Line = strconv.Itoa(int(e.Line))
	}
	if q := f[pqQueryKey]; positionFits(pe.Position, q) {
		setPQQuery(pe, q)
	}
	return pe
}

// positionFits reports whether lib/pq can place pos (a 1-based character
// index) in q, as it always can for what PostgreSQL sent about q: its
// ErrorWithDetail would panic on a position past the end, which only a
// malformed message could carry.
func positionFits(pos, q string) bool {
	p, err := strconv.Atoi(pos)
	return err != nil || p <= utf8.RuneCountInString(q)+1
}

func (PQ) SQLState(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return ""
}

func atoi32(s string) int32 {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// pqQueryOffset locates *pq.Error's unexported query string. lib/pq offers
// no way to set it, and without it a rebuilt error's Error() would lack
// the position ("at column 8") a local one has. Should a lib/pq version
// drop or retype the field, the errors still cross, every exported field
// intact, and only that part of the text is lost (TestPQErrorFieldEqual
// notices).
var pqQueryOffset, pqQueryKnown = func() (uintptr, bool) {
	f, ok := reflect.TypeFor[pq.Error]().FieldByName("query")
	return f.Offset, ok && f.Type.Kind() == reflect.String
}()

func pqErrQuery(pe *pq.Error) string {
	if !pqQueryKnown {
		return ""
	}
	return *(*string)(unsafe.Add(unsafe.Pointer(pe), pqQueryOffset))
}

func setPQQuery(pe *pq.Error, q string) {
	if !pqQueryKnown || q == "" {
		return
	}
	*(*string)(unsafe.Add(unsafe.Pointer(pe), pqQueryOffset)) = q
}
