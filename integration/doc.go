// Package integration proves flypg under the Go ecosystem's database
// libraries — GORM, sqlx, bun, sqlc-generated code, and the otelsql and sqlmw
// instrumentation wrappers — with the app in a replica region, on real
// PostgreSQL servers.
//
// It is a module of its own (github.com/flypg/flypg/integration, with a
// replace of the root), so users of flypg never inherit these libraries as
// dependencies. Each library has a package of tests here (gormtest,
// sqlxtest, buntest, sqlctest, wraptest); all of them run against the
// deployment that package internal/fixture starts: a primary in "syd", its
// hot standby in "lax" with replay held back by recovery_min_apply_delay, and
// a flypg node in each region. The delay is what makes the tests mean
// something: a read on the replica right after a write sees it only if
// flypg waited for the write to replay, so a library path that loses the
// await fails here.
//
// The recipes in docs/orm.md are copied from the recipe functions and
// Examples of these packages; TestRecipesMatchDocs keeps the two the same.
//
// Run the suite with `cd integration && go test -race ./...`; the
// benchmarks (a write from the replica region through each library over a
// simulated WAN, against the ideal of one round trip plus the primary's own
// time) with `go test -run '^$' -bench . ./...` — FLYPG_BENCH_RTT sets the
// round trip (default 50ms).
package integration
