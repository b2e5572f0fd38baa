// Package migrate holds the SQL that flypg installs in a user's database: the
// server-side wait function flypg.wait_for_lsn, which lets the LSN tracker
// (package lsn) wait for replay on a standby with one call instead of a
// stream of polls. Installing it is optional — without it the tracker polls
// — and it is the Go counterpart of fly_postgres's watch_for_lsn_change
// migration.
//
// # Running the migrations
//
// Migrations change the database, so they run on the PRIMARY, with the plain
// driver — for example sql.Open("pgx", primaryURL) — not through flypg's
// forwarding driver; replication then carries the function to every standby,
// where the tracker finds it the next time it connects.
//
// Up and Down apply the files in one transaction under a transaction-level
// advisory lock, so that nodes starting together do not collide, and every
// file is idempotent (CREATE OR REPLACE, IF [NOT] EXISTS): calling Up at
// every start-up is fine. They keep no version table of their own.
//
// # With a migration tool
//
// FS holds the same files as sql/NNNN_name.up.sql and sql/NNNN_name.down.sql:
//
//   - golang-migrate reads them as they are, e.g. with the iofs source:
//     iofs.New(migrate.FS, "sql"), or copy them into your migrations
//     directory (renumber them to fit your sequence).
//   - goose: copy each pair into one file, the up part under "-- +goose Up"
//     and the down part under "-- +goose Down", wrapping the CREATE FUNCTION
//     statement in "-- +goose StatementBegin" / "-- +goose StatementEnd"
//     (its body contains semicolons); or call Up and Down from a Go migration.
//   - Atlas (versioned migrations): copy the .up.sql file into your migration
//     directory and run atlas migrate hash.
package migrate
