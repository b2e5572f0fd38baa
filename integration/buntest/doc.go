// Package buntest proves github.com/uptrace/bun (with its pgdialect) on
// flypg with the app in a replica region: CREATE TABLE, INSERT … RETURNING,
// bulk insert, select, update, delete and RunInTx, with read-your-writes
// while the replica's replay is delayed. bun formats every argument into
// the SQL text itself (no bind parameters), so these tests also cover
// flypg classifying and forwarding statements whose values are inline —
// arrays, jsonb, bytea and a 6 MiB blob among them.
//
// The package has no code of its own: its tests and Examples are the
// recipes of docs/orm.md.
package buntest
