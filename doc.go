// Package flypg is a database/sql driver for Go apps that run in many regions
// on one PostgreSQL primary and its streaming hot-standby replicas, as on
// Fly.io. It wraps pgx's database/sql driver (or lib/pq's), and an app opens
// it instead, with the primary's URL — Fly.io's DATABASE_URL, the same in
// every region — and changes nothing else:
//
//	db, err := sql.Open("flypg", os.Getenv("DATABASE_URL"))
//
// Every node of the app knows its region (FLY_REGION) and the primary region
// (PRIMARY_REGION), and shares a cluster secret (FLYPG_SECRET) with the
// others. In a replica region flypg connects to the region's replica
// (ReplicaURL derives its URL) and routes each statement when it runs: reads
// run there; writes — autocommit statements and read-write transactions —
// are forwarded over an authenticated link to a node whose database is the
// primary, run there, and the caller then waits until its local replica has
// replayed the commit, so the app's next read sees its own write. A node
// whose local database is the primary runs everything locally, exactly as
// the wrapped driver would, and serves what other regions forward. With no
// PRIMARY_REGION flypg is a transparent pass-through (dev mode): local
// development and tests need nothing else.
//
// sql.Open does no I/O; the first connection starts the process's node
// from the environment (ConfigFromEnv). A long-running app usually starts
// it itself with Start, and opens databases with Node.OpenDB and Node.Open.
//
// # Consistency, per call
//
// Contexts change what a call waits for: NoAwait (writes return once the
// primary committed), OnPrimary (reads run on the primary), Track and
// AfterLSN (read-your-writes carried to the next request on any node, as
// the causal tokens of Node.Token and package flypghttp), Pipeline (a remote
// transaction's statements travel together). RegisterProc, CallPrimary and
// CallRegion run a function next to the primary, or in a region, in one
// round trip.
//
// # What an error means
//
// nil: committed and, unless NoAwait, replayed locally. *AwaitError
// (ErrAwaitTimeout) and *CommittedError (ErrCommitted): committed, not
// known to be visible locally; both carry the result. A PostgreSQL error
// (the wrapped driver's own type, returned bare), ErrNoPrimary, ErrTxGone,
// *SessionStateError (unless its Committed is set): not committed.
// ErrUnknownOutcome: it may have committed, and flypg never resends it.
//
// The repository's docs/ directory has the rest: getting-started.md,
// configuration.md, routing.md, consistency.md, guarantees.md,
// migrations.md, orm.md, troubleshooting.md, deploy-fly.md,
// observability.md, metrics.md, security.md, benchmarks.md and
// ARCHITECTURE.md.
package flypg
