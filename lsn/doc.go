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
// (PostgreSQL 19 prints the low half zero-padded to 8 digits, "16/0374D848";
// Parse accepts both forms, String prints the short one, and the server
// accepts both.)
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
// # How the tracker learns of replay
//
// The tracker picks, per connection, the best of three ways; Stats.Mode says
// which is in use.
//
// WAIT FOR LSN ("wait-for"). PostgreSQL 19 added the statement
//
//	WAIT FOR LSN '<lsn>' WITH (TIMEOUT '<ms>', NO_THROW)
//
// which blocks on the standby until replay reaches the LSN and is woken by
// the startup process itself, holding no snapshot while it waits. When the
// probe that opens the connection reports server_version_num ≥ 190000, the
// tracker waits with it for the smallest pending target (capped at 1 s per
// statement, NO_THROW so that a timeout or a promotion is a status row, not
// an error); a waiter with a smaller target cancels the statement in flight
// with a cancel request. If the server refuses the statement anyway (a fork
// that reports 19, a syntax it does not know), the tracker falls back to the
// next way for that connection's lifetime. Config.DisableWaitFor turns it
// off. (No PostgreSQL 19 server was available where this was written: the
// selection logic and the statement text are unit-tested, the statement
// itself is not.)
//
// The WAL-arrival signal ("signal"), on PostgreSQL 15–18. With the first
// waiter the tracker also opens a physical replication connection to its
// own standby (application_name "flypg-lsn-tracker-signal") and reads the
// stream without storing it. A standby's walsender is woken as soon as its
// walreceiver has flushed new WAL, the same moment the startup process is
// woken to replay it, and every message carries the standby's flush
// position. So the tracker does not poll while a target's WAL is still in
// flight: it polls once when the signal says the WAL is there, then with
// the client-side backoff below counted from that moment until replay
// confirms it. While the WAL has not arrived it polls only every
// MaxPollInterval, a safety net in case the signal stalls. The connection
// closes WALSignalLinger (1 s) after the last waiter left, so a burst of
// writes does not reconnect for each one, and an idle tracker has neither
// queries nor a replication connection.
//
// The signal needs what any replica does: the REPLICATION attribute on the
// DSN's role, a pg_hba.conf "replication" entry, and a free walsender slot
// on the standby (max_wal_senders > 0; a hot standby has at least as many
// as its primary). Where any is missing, where the connection breaks, or
// where the stream ends because the standby changed timeline (a promotion
// upstream) or was itself promoted, the tracker polls by itself and tries
// the signal again — at once after a timeline change, otherwise with
// backoff from 1 s to 1 min, logging once per outage. Its status messages
// report the received WAL as written and flush and apply positions of zero:
// a shutting-down standby's walsender can finish, and the connection can
// never count as a synchronous standby. Config.DisableWALSignal turns it
// off.
//
// Client-side polls ("poll") of pg_last_wal_replay_lsn(). The pause between
// polls follows the age of the smallest pending target: age/8, clamped to
// [MinPollInterval, MaxPollInterval] (default 100 µs to 20 ms). A fresh
// waiter is thus polled at sub-millisecond granularity, while a lagging or
// paused replica is polled ever more slowly; polling never costs a waiter
// more than about an eighth of the time it has already waited, plus a round
// trip. (Go's timers make a sub-millisecond pause about 1 ms in a quiet
// process.)
//
// No way holds a snapshot on the standby while it waits: a poll holds one
// for microseconds, WAIT FOR LSN and the signal hold none. A snapshot held
// across a wait — as by the server-side function flypg.wait_for_lsn of
// migration 0001, which this package used before — conflicts with replaying
// a VACUUM or HOT-prune record of rows changed meanwhile: replay stops until
// the snapshot is released, delaying every reader of the standby, or, with
// a small max_standby_streaming_delay, the holder is cancelled. The tracker
// no longer calls that function even where it is installed; migration 0002
// removes it.
//
// A target that pg_current_wal_insert_lsn() reports just past a WAL page
// header — which happens when the commit record ends exactly at a page
// boundary, about once per thousand commits — is waited for at the boundary:
// replay reports the boundary, no record ends inside a header, and waiting for
// the literal value would last until unrelated WAL arrives (on a quiet
// primary, up to 15 s). The tracker reads the WAL page and segment sizes when
// it connects.
//
// # Recovery state and roles
//
// Every observation also reads pg_is_in_recovery(). A database that is not
// in recovery — a primary, or a replica that was promoted — has nothing to
// wait for: Wait returns nil at once from then on, including for the
// waiters blocked at the time. InRecovery returns the last observation,
// without I/O once connected; since an idle tracker observes nothing, its
// answer can be arbitrarily old. Refresh queries now (serialised with the
// poller, cancelling a WAIT FOR LSN in flight) and updates it: call it after
// an error that suggests the role changed, such as SQLSTATE 25006, or on a
// timer.
//
// # Failures
//
// Errors while polling are retried: recovery conflicts (SQLSTATE 40001) and
// other server errors on a live connection after a short backoff; a lost
// connection is reopened at once and then with exponential backoff up to
// Config.MaxReconnectDelay, while waiters keep waiting until their own
// contexts end. When the standby stops and starts again, the same Tracker
// reconnects (and its signal returns) by itself. Wait never returns a
// database error: its only failures are *WaitError (the context ended) and
// ErrClosed.
//
// # Measuring
//
// Package lsn/wakebench measures a tracker's wake-up after the standby has
// the WAL, and its polling, without a busy-polling observer; the package's
// BenchmarkWakeDelay runs it with and without the signal in one run.
package lsn
