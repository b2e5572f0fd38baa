// Package checker checks flypg's central promises under load and faults:
// read-your-writes, and that every write's outcome tells the truth.
//
// Many clients, each bound to one node's database in a replica region, do
// a random mix of writes — autocommit Exec, INSERT … RETURNING, read-write
// transactions (some pipelined with flypg.Pipeline), flypg.CallPrimary —
// with keys of their own (run, client, sequence number, row index), and
// reads of those keys. Every operation is recorded with its outcome
// classified as DESIGN's "Outcomes" define them, and its start and end.
// At the end the checker reads the primary and verifies:
//
//   - every acknowledged write (nil, *flypg.AwaitError, *flypg.CommittedError)
//     is on the primary exactly once, all of its rows;
//   - a write with a definite error (a PostgreSQL error, ErrNoPrimary,
//     ErrTxGone, a transaction that failed before Commit, any error of no
//     documented kind) is absent;
//   - a write with ErrUnknownOutcome (or a context error, or a procedure's
//     own error) is there zero times or once, never in part;
//   - every read sees every write its client made before it that was
//     acknowledged by nil, and every earlier committed write up to the
//     client's last acknowledged one (the replica replays in commit order),
//     and never a write whose error said it did not commit;
//   - no call returns later than its deadline plus Config.DeadlineSlack.
//
// Each violation carries the client's operation history around it (node,
// region, outcome, error, times). Verify is the pure verifier, unit-tested
// on planted histories; Run and Start drive real databases; Soak is the
// 1,000-client, 60-second load of `flypg-lab soak`, next to the same load
// sent direct with pgx.
//
// The checker's rows live in one table (Table, default flypg_checker), each
// run's under its own run id, so runs may share a database.
package checker
