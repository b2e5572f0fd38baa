-- The schema package authors was written against (sqlc's schema input).
CREATE TABLE authors (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL,
    bio        text,
    tags       text[],
    created_at timestamptz NOT NULL DEFAULT now()
);
