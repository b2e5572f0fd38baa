package backend

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flypg/flypg/internal/wire"
)

// resultFormats are the result formats pgx's stdlib asks for (its
// databaseSQLResultFormats): binary for the types its Rows decode from
// binary, text for everything else.
var resultFormats = pgx.QueryResultFormatsByOID{
	pgtype.BoolOID: 1, pgtype.ByteaOID: 1, pgtype.CIDOID: 1, pgtype.DateOID: 1,
	pgtype.Float4OID: 1, pgtype.Float8OID: 1, pgtype.Int2OID: 1, pgtype.Int4OID: 1,
	pgtype.Int8OID: 1, pgtype.OIDOID: 1, pgtype.TimestampOID: 1, pgtype.TimestamptzOID: 1,
	pgtype.XIDOID: 1,
}

// pgxConn is the pgx connection under a local driver connection, or nil.
func pgxConn(local driver.Conn) *pgx.Conn {
	if sc, ok := local.(*stdlib.Conn); ok && !sc.Conn().IsClosed() {
		return sc.Conn()
	}
	return nil
}

// CheckNamedValue accepts everything, as pgx's stdlib does: pgx encodes
// Valuers, pointers and its own types itself.
func (Pgx) CheckNamedValue(*driver.NamedValue) error { return nil }

// NonStandardStrings reads the session's standard_conforming_strings, which
// PostgreSQL reports to the client whenever it changes.
func (Pgx) NonStandardStrings(local driver.Conn) bool {
	c := pgxConn(local)
	return c != nil && c.PgConn().ParameterStatus("standard_conforming_strings") == "off"
}

// typeMap is the local connection's type map — it knows the types the app
// registered on it — or pgx's default one.
func typeMap(local driver.Conn) *pgtype.Map {
	if c := pgxConn(local); c != nil {
		return c.TypeMap()
	}
	return pgtype.NewMap()
}

// Prepare does what pgx's Conn.Exec and Conn.Query do before they send a
// statement, so the primary receives the very bytes pgx would have sent:
// query rewriters (pgx.NamedArgs) apply; an Exec without arguments uses
// the simple protocol; otherwise the statement is described (on the local
// replica — same catalog — or, when that fails, on the primary) and its
// arguments encoded by pgx's ExtendedQueryBuilder with the local type map.
func (Pgx) Prepare(ctx context.Context, local driver.Conn, query string, named []driver.NamedValue, rows bool, describe Describer) (*wire.Statement, error) {
	args := make([]any, len(named))
	for i, a := range named {
		args[i] = a.Value
	}
	var formats pgx.QueryResultFormats
	var byOID pgx.QueryResultFormatsByOID
	if rows {
		byOID = resultFormats
	}
	var rewriter pgx.QueryRewriter
options:
	for len(args) > 0 {
		switch a := args[0].(type) {
		case pgx.QueryExecMode:
			// The primary runs what the caller would have run in pgx's
			// default mode; the result is the same.
		case pgx.QueryRewriter:
			rewriter = a
		case pgx.QueryResultFormats:
			formats = a
		case pgx.QueryResultFormatsByOID:
			byOID = a
		default:
			break options
		}
		args = args[1:]
	}
	if rewriter != nil {
		var err error
		if query, args, err = rewriter.RewriteQuery(ctx, pgxConn(local), query, args); err != nil {
			return nil, fmt.Errorf("rewrite query failed: %w", err)
		}
	}
	if len(args) > math.MaxUint16 {
		// pgconn's own check, before anything is sent.
		return nil, fmt.Errorf("extended protocol limited to %v parameters", math.MaxUint16)
	}
	st := &wire.Statement{Query: query, Rows: rows}
	if !rows && len(args) == 0 || rows && query == "" {
		st.Simple = true
		return st, nil
	}
	sd, err := describeStmt(ctx, local, query, describe)
	if err != nil {
		return nil, err
	}
	if len(sd.ParamOIDs) != len(args) {
		return nil, fmt.Errorf("expected %d arguments, got %d", len(sd.ParamOIDs), len(args))
	}
	var eqb pgx.ExtendedQueryBuilder
	if err := eqb.Build(typeMap(local), sd, args); err != nil {
		return nil, err
	}
	p := &wire.Params{OIDs: sd.ParamOIDs, Formats: eqb.ParamFormats, Values: eqb.ParamValues, Results: eqb.ResultFormats}
	switch { // as pgx's Query: formats by OID win over explicit ones
	case byOID != nil:
		p.Results = make([]int16, len(sd.Fields))
		for i, f := range sd.Fields {
			p.Results[i] = byOID[f.DataTypeOID]
		}
	case formats != nil:
		p.Results = formats
	}
	st.Params = p
	return st, nil
}

// describeStmt describes query on the local connection (an unnamed
// statement: nothing stays on the server), else with describe. The local
// replica has the primary's catalog, but may not have replayed the latest
// DDL yet, and a remote transaction's temporary tables exist only on the
// primary: any local failure asks the primary, whose answer (or error) is
// authoritative.
func describeStmt(ctx context.Context, local driver.Conn, query string, describe Describer) (*pgconn.StatementDescription, error) {
	if c := pgxConn(local); c != nil {
		if sd, err := c.PgConn().Prepare(ctx, "", query, nil); err == nil {
			return sd, nil
		} else if ctx.Err() != nil {
			return nil, err
		}
	}
	d, err := describe(ctx, query)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("flypg: no description of the statement")
	}
	sd := &pgconn.StatementDescription{SQL: query, ParamOIDs: d.ParamOIDs, Fields: make([]pgconn.FieldDescription, len(d.Fields))}
	for i, f := range d.Fields {
		sd.Fields[i] = fieldDesc(f)
	}
	return sd, nil
}

func fieldDesc(f wire.Field) pgconn.FieldDescription {
	return pgconn.FieldDescription{Name: f.Name, TableOID: f.TableOID, TableAttributeNumber: f.TableAttributeNumber,
		DataTypeOID: f.DataTypeOID, DataTypeSize: f.DataTypeSize, TypeModifier: f.TypeModifier, Format: f.Format}
}

func wireField(f pgconn.FieldDescription) wire.Field {
	return wire.Field{Name: f.Name, TableOID: f.TableOID, TableAttributeNumber: f.TableAttributeNumber,
		DataTypeOID: f.DataTypeOID, DataTypeSize: f.DataTypeSize, TypeModifier: f.TypeModifier, Format: f.Format}
}
