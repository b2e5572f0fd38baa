// Package authors is code in the shape sqlc (v1.x) generates from
// schema.sql and query.sql with sqlc.yaml — database/sql, prepared
// queries — written by hand so the integration module needs no code
// generator. It has no flypg in it: that is the point.
package authors

import (
	"context"
	"database/sql"
	"fmt"
)

// DBTX is what the queries run on: *sql.DB, *sql.Tx or *sql.Conn.
type DBTX interface {
	ExecContext(context.Context, string, ...interface{}) (sql.Result, error)
	PrepareContext(context.Context, string) (*sql.Stmt, error)
	QueryContext(context.Context, string, ...interface{}) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...interface{}) *sql.Row
}

// New returns queries that run their SQL text on db.
func New(db DBTX) *Queries {
	return &Queries{db: db}
}

// Prepare prepares every query on db and returns queries that run the
// prepared statements.
func Prepare(ctx context.Context, db DBTX) (*Queries, error) {
	q := Queries{db: db}
	var err error
	if q.countAuthorsStmt, err = db.PrepareContext(ctx, countAuthors); err != nil {
		return nil, fmt.Errorf("error preparing query CountAuthors: %w", err)
	}
	if q.createAuthorStmt, err = db.PrepareContext(ctx, createAuthor); err != nil {
		return nil, fmt.Errorf("error preparing query CreateAuthor: %w", err)
	}
	if q.deleteAuthorStmt, err = db.PrepareContext(ctx, deleteAuthor); err != nil {
		return nil, fmt.Errorf("error preparing query DeleteAuthor: %w", err)
	}
	if q.getAuthorStmt, err = db.PrepareContext(ctx, getAuthor); err != nil {
		return nil, fmt.Errorf("error preparing query GetAuthor: %w", err)
	}
	if q.listAuthorsByIDsStmt, err = db.PrepareContext(ctx, listAuthorsByIDs); err != nil {
		return nil, fmt.Errorf("error preparing query ListAuthorsByIDs: %w", err)
	}
	if q.updateAuthorBioStmt, err = db.PrepareContext(ctx, updateAuthorBio); err != nil {
		return nil, fmt.Errorf("error preparing query UpdateAuthorBio: %w", err)
	}
	return &q, nil
}

// Close closes the prepared statements.
func (q *Queries) Close() (err error) {
	for _, s := range []struct {
		name string
		stmt *sql.Stmt
	}{
		{"countAuthorsStmt", q.countAuthorsStmt},
		{"createAuthorStmt", q.createAuthorStmt},
		{"deleteAuthorStmt", q.deleteAuthorStmt},
		{"getAuthorStmt", q.getAuthorStmt},
		{"listAuthorsByIDsStmt", q.listAuthorsByIDsStmt},
		{"updateAuthorBioStmt", q.updateAuthorBioStmt},
	} {
		if s.stmt != nil {
			if cerr := s.stmt.Close(); cerr != nil {
				err = fmt.Errorf("error closing %s: %w", s.name, cerr)
			}
		}
	}
	return err
}

func (q *Queries) exec(ctx context.Context, stmt *sql.Stmt, query string, args ...interface{}) (sql.Result, error) {
	switch {
	case stmt != nil && q.tx != nil:
		return q.tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	case stmt != nil:
		return stmt.ExecContext(ctx, args...)
	default:
		return q.db.ExecContext(ctx, query, args...)
	}
}

func (q *Queries) query(ctx context.Context, stmt *sql.Stmt, query string, args ...interface{}) (*sql.Rows, error) {
	switch {
	case stmt != nil && q.tx != nil:
		return q.tx.StmtContext(ctx, stmt).QueryContext(ctx, args...)
	case stmt != nil:
		return stmt.QueryContext(ctx, args...)
	default:
		return q.db.QueryContext(ctx, query, args...)
	}
}

func (q *Queries) queryRow(ctx context.Context, stmt *sql.Stmt, query string, args ...interface{}) *sql.Row {
	switch {
	case stmt != nil && q.tx != nil:
		return q.tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...)
	case stmt != nil:
		return stmt.QueryRowContext(ctx, args...)
	default:
		return q.db.QueryRowContext(ctx, query, args...)
	}
}

// Queries runs the queries of query.sql.
type Queries struct {
	db                   DBTX
	tx                   *sql.Tx
	countAuthorsStmt     *sql.Stmt
	createAuthorStmt     *sql.Stmt
	deleteAuthorStmt     *sql.Stmt
	getAuthorStmt        *sql.Stmt
	listAuthorsByIDsStmt *sql.Stmt
	updateAuthorBioStmt  *sql.Stmt
}

// WithTx returns the queries bound to tx (prepared statements are
// re-bound to it with tx.StmtContext).
func (q *Queries) WithTx(tx *sql.Tx) *Queries {
	return &Queries{
		db:                   tx,
		tx:                   tx,
		countAuthorsStmt:     q.countAuthorsStmt,
		createAuthorStmt:     q.createAuthorStmt,
		deleteAuthorStmt:     q.deleteAuthorStmt,
		getAuthorStmt:        q.getAuthorStmt,
		listAuthorsByIDsStmt: q.listAuthorsByIDsStmt,
		updateAuthorBioStmt:  q.updateAuthorBioStmt,
	}
}
