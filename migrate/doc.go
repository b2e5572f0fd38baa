// Package migrate holds the SQL migrations of the objects flypg keeps in a
// user's database, the Go counterpart of fly_postgres's migrations.
//
// Today they leave nothing behind. Migration 0001 installed a server-side
// wait function, flypg.wait_for_lsn, for the LSN tracker (package lsn).
// Because it waited inside one query, it held a snapshot for up to 50 ms at
// a time, and replaying a VACUUM or HOT-prune record that conflicted with
// that snapshot had to wait for the call to end (measured: about 64 ms per
// conflict on PostgreSQL 15), delaying replay for every reader of the
// standby. Migration 0002 removes it (and the flypg schema, if nothing of
// yours is in it). The tracker no longer uses a server-side function: it
// polls, helped by a WAL-arrival signal, and uses PostgreSQL 19's
// WAIT FOR LSN where the server has it. Running Up is therefore the upgrade
// for a database an older flypg migrated; trackers of older versions that
// still look for the function find it gone (SQLSTATE 42883) and poll.
//
// # Running the migrations
//
// Migrations change the database, so they run on the PRIMARY, with the plain
// driver — for example sql.Open("pgx", primaryURL) — not through flypg's
// forwarding driver; replication then carries the changes to every standby.
//
// Up and Down apply the files in one transaction under a transaction-level
// advisory lock, so that nodes starting together do not collide, and every
// file is idempotent (CREATE OR REPLACE, IF [NOT] EXISTS): calling Up at
// every start-up is fine. They keep no version table of their own. Down
// runs the down files newest first; 0001's refuses to drop a flypg schema
// that holds objects of yours, and then Down returns that error and changes
// nothing.
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
//     and DO statements in "-- +goose StatementBegin" / "-- +goose
//     StatementEnd" (their bodies contain semicolons); or call Up and Down
//     from a Go migration.
//   - Atlas (versioned migrations): copy the .up.sql files into your migration
//     directory and run atlas migrate hash.
package migrate
