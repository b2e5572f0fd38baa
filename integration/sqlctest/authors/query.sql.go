// query.sql's queries, as sqlc writes them.

package authors

import (
	"context"
	"database/sql"

	"github.com/lib/pq"
)

const countAuthors = `-- name: CountAuthors :one
SELECT count(*) FROM authors
`

// CountAuthors counts the authors.
func (q *Queries) CountAuthors(ctx context.Context) (int64, error) {
	row := q.queryRow(ctx, q.countAuthorsStmt, countAuthors)
	var count int64
	err := row.Scan(&count)
	return count, err
}

const createAuthor = `-- name: CreateAuthor :one
INSERT INTO authors (name, bio, tags) VALUES ($1, $2, $3)
RETURNING id, name, bio, tags, created_at
`

// CreateAuthorParams are CreateAuthor's arguments.
type CreateAuthorParams struct {
	Name string
	Bio  sql.NullString
	Tags []string
}

// CreateAuthor inserts an author and returns the row.
func (q *Queries) CreateAuthor(ctx context.Context, arg CreateAuthorParams) (Author, error) {
	row := q.queryRow(ctx, q.createAuthorStmt, createAuthor, arg.Name, arg.Bio, pq.Array(arg.Tags))
	var i Author
	err := row.Scan(
		&i.ID,
		&i.Name,
		&i.Bio,
		pq.Array(&i.Tags),
		&i.CreatedAt,
	)
	return i, err
}

const deleteAuthor = `-- name: DeleteAuthor :exec
DELETE FROM authors WHERE id = $1
`

// DeleteAuthor deletes an author.
func (q *Queries) DeleteAuthor(ctx context.Context, id int64) error {
	_, err := q.exec(ctx, q.deleteAuthorStmt, deleteAuthor, id)
	return err
}

const getAuthor = `-- name: GetAuthor :one
SELECT id, name, bio, tags, created_at FROM authors WHERE id = $1
`

// GetAuthor returns an author.
func (q *Queries) GetAuthor(ctx context.Context, id int64) (Author, error) {
	row := q.queryRow(ctx, q.getAuthorStmt, getAuthor, id)
	var i Author
	err := row.Scan(
		&i.ID,
		&i.Name,
		&i.Bio,
		pq.Array(&i.Tags),
		&i.CreatedAt,
	)
	return i, err
}

const listAuthorsByIDs = `-- name: ListAuthorsByIDs :many
SELECT id, name, bio, tags, created_at FROM authors WHERE id = ANY($1::bigint[]) ORDER BY id
`

// ListAuthorsByIDs returns the authors with the given ids.
func (q *Queries) ListAuthorsByIDs(ctx context.Context, dollar_1 []int64) ([]Author, error) {
	rows, err := q.query(ctx, q.listAuthorsByIDsStmt, listAuthorsByIDs, pq.Array(dollar_1))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []Author
	for rows.Next() {
		var i Author
		if err := rows.Scan(
			&i.ID,
			&i.Name,
			&i.Bio,
			pq.Array(&i.Tags),
			&i.CreatedAt,
		); err != nil {
			return nil, err
		}
		items = append(items, i)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

const updateAuthorBio = `-- name: UpdateAuthorBio :execrows
UPDATE authors SET bio = $2 WHERE id = $1
`

// UpdateAuthorBioParams are UpdateAuthorBio's arguments.
type UpdateAuthorBioParams struct {
	ID  int64
	Bio sql.NullString
}

// UpdateAuthorBio sets an author's bio and returns the rows affected.
func (q *Queries) UpdateAuthorBio(ctx context.Context, arg UpdateAuthorBioParams) (int64, error) {
	result, err := q.exec(ctx, q.updateAuthorBioStmt, updateAuthorBio, arg.ID, arg.Bio)
	if err != nil {
		return 0, err
	}
	return result.RowsAffected()
}
