// Package sqlctest proves sqlc-generated code on flypg with the app in a
// replica region. Package authors is what sqlc generates for
// engine "postgresql" with sql_package "database/sql" and
// emit_prepared_queries (a DBTX interface, New, Prepare, WithTx,
// lib/pq's pq.Array for array arguments, = ANY($1) for lists), written by
// hand in that shape so the module needs no code generator; the tests run
// it unprepared, prepared, and in transactions, with read-your-writes while
// the replica's replay is delayed.
package sqlctest
