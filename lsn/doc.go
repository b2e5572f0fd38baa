// Package lsn gives flypg read-your-writes on a hot-standby replica: a write
// forwarded to the primary returns the WAL position (LSN) of its commit, and
// the caller blocks in Tracker.Wait until the local replica has replayed that
// position, so that its next read on the replica sees the write.
//
// # LSN
//
// LSN is a PostgreSQL pg_lsn as a uint64. It parses and prints PostgreSQL's
// "X/X" text form, scans from and binds to pg_lsn columns and parameters
// (database/sql and pgx), and marshals as text for JSON and msgpack.
//
// The LSN to wait for after a commit is pg_current_wal_insert_lsn(), read on
// the primary session right after COMMIT. pg_current_wal_lsn() is the write
// position, which can lag behind an asynchronously committed transaction.
//
// # Tracker
//
// One Tracker serves one local database and any number of concurrent Waits
// with a single poller goroutine on a single dedicated connection (its
// application_name is "flypg-lsn-tracker"). The poller runs only while Waits
// are blocked, and the connection, opened on first use, sits idle in
// between: an idle tracker issues no queries.
//
// Waiters sit in a min-heap by target. Each observation of the replay
// position wakes exactly the waiters it satisfies, and a waiter whose context
// ends removes itself at once. A Wait whose target is at or below the last
// observed position returns without any I/O: replay only moves forward while
// a server runs, so an earlier observation already proves the data visible.
// (After the replica restarts, its first observation replaces the old one,
// since crash recovery can briefly expose less than was visible before.)
//
// How the poller learns the replay position:
//
//   - Client-side polls of pg_last_wal_replay_lsn(). The pause between polls
//     follows the age of the smallest pending target: age/8, clamped to
//     [MinPollInterval, MaxPollInterval] (default 100 µs to 20 ms). A fresh
//     waiter is thus served at sub-millisecond granularity — on loopback
//     replay usually lands within a millisecond of the commit — while a
//     lagging or paused replica is polled ever more slowly; polling never
//     costs a waiter more than about an eighth of the time it has already
//     waited, plus a round trip.
//   - The server-side wait function flypg.wait_for_lsn(target, timeout_ms),
//     installed by package migrate. One call sleeps on the server until
//     replay reaches the smallest pending target (or 50 ms pass) and returns
//     the replayed LSN: one round trip instead of dozens. Because PostgreSQL
//     sleeps in whole milliseconds, the function is coarser than client-side
//     polling for short waits, so the tracker uses it only once the smallest
//     target has waited Config.WaitFunctionAfter (default 8 ms, where the
//     client-side interval reaches 1 ms). A new waiter with a smaller target
//     than the call in flight cancels it (a PostgreSQL cancel request) rather
//     than wait behind it. The function is looked up once per connection.
//
// A target that pg_current_wal_insert_lsn() reports just past a WAL page
// header — which happens when the commit record ends exactly at a page
// boundary, about once per thousand commits — is waited for at the boundary:
// replay reports the boundary, no record ends inside a header, and waiting for
// the literal value would last until unrelated WAL arrives (on a quiet
// primary, up to 15 s). The tracker reads the WAL page and segment sizes when
// it connects; the wait function applies the same rule.
//
// Whatever the mode, each query also reads pg_is_in_recovery(). A database
// that is not in recovery — a primary, or a replica that was promoted — has
// nothing to wait for: Wait returns nil at once from then on. InRecovery
// exposes that cached answer.
//
// Errors while polling are retried: recovery conflicts (SQLSTATE 40001) and
// other server errors on a live connection after a short backoff; a lost
// connection is reopened at once and then with exponential backoff up to
// Config.MaxReconnectDelay, while waiters keep waiting until their own
// contexts end. Wait never returns a database error: its only failures are
// *WaitError (the context ended) and ErrClosed.
package lsn
