// Package flypg is a database/sql driver for Go apps that run in many regions
// on one PostgreSQL primary and its streaming hot-standby replicas.
//
// An app opens flypg instead of pgx and changes nothing else:
//
//	db, err := sql.Open("flypg", os.Getenv("DATABASE_URL"))
//
// Every node knows its region (FLY_REGION) and the primary region
// (PRIMARY_REGION). Reads run on the local database: the replica in a replica
// region, the primary in the primary region. In a replica region, writes —
// autocommit statements and read-write transactions — are shipped to a node in
// the primary region, run there on the primary, and the caller then waits
// until its local replica has replayed the commit, so the app's next read sees
// its own write. NoAwait skips that wait; CallPrimary runs a registered
// procedure on the primary in one round trip.
//
// With no PRIMARY_REGION, or in the primary region, flypg is a transparent
// pass-through to pgx's database/sql driver: local development and tests need
// nothing else.
//
// See docs/ARCHITECTURE.md for how it works and what it guarantees.
package flypg
