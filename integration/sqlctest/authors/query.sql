-- The queries package authors implements (sqlc's query input).

-- name: CreateAuthor :one
INSERT INTO authors (name, bio, tags) VALUES ($1, $2, $3)
RETURNING id, name, bio, tags, created_at;

-- name: GetAuthor :one
SELECT id, name, bio, tags, created_at FROM authors WHERE id = $1;

-- name: ListAuthorsByIDs :many
SELECT id, name, bio, tags, created_at FROM authors WHERE id = ANY($1::bigint[]) ORDER BY id;

-- name: UpdateAuthorBio :execrows
UPDATE authors SET bio = $2 WHERE id = $1;

-- name: DeleteAuthor :exec
DELETE FROM authors WHERE id = $1;

-- name: CountAuthors :one
SELECT count(*) FROM authors;
