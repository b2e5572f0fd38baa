package lsn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	probeSQL = "SELECT pg_last_wal_replay_lsn()::text, pg_is_in_recovery(), current_setting('server_version_num')::int, " +
		"current_setting('wal_block_size')::bigint, pg_size_bytes(current_setting('wal_segment_size'))"
	pollSQL = "SELECT pg_last_wal_replay_lsn()::text, pg_is_in_recovery()"
)

// run is the poller: it exists only while waiters do. Each round it looks at
// the smallest pending target and decides, by mode, when to query next:
//
//   - wait-for: at once, a WAIT FOR LSN for that target (the server wakes
//     it on replay);
//   - signal: at once when the signal reports that the target's WAL has
//     arrived, then with backoff from that moment until replay confirms it;
//     otherwise only every MaxPollInterval, as a safety net;
//   - poll: after the target's age / backoffDivisor, within
//     [MinPollInterval, MaxPollInterval].
//
// It returns as soon as no waiter is left, so an idle tracker issues no
// queries and has no poller goroutine.
func (t *Tracker) run() {
	defer t.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sleep := func(d time.Duration) {
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-t.kick: // the smallest target changed, or the signal has news: re-plan now
		case <-t.ctx.Done():
		}
		timer.Stop()
	}

	var (
		retryAt time.Time
		backoff time.Duration
		// armed is the target end for which the signal reported WAL,
		// armedAt when the poller first saw that, and armedPolls how many
		// polls it has made for it since.
		armed      LSN
		armedAt    time.Time
		armedPolls int
	)
	for {
		target, since, ok := t.next()
		if !ok {
			return
		}
		now := time.Now()
		if wait := retryAt.Sub(now); wait > 0 {
			sleep(wait)
			continue
		}
		t.maybeStartSignal(now)
		t.connMu.Lock()
		if t.conn == nil {
			err := t.connectLocked(t.ctx)
			t.connMu.Unlock()
			if err != nil {
				backoff = t.nextBackoff(backoff)
				retryAt = time.Now().Add(backoff)
			} else {
				backoff = 0
				t.maybeStartSignal(time.Now())
			}
			continue
		}

		end := t.recordEnd(target)
		t.minEnd.Store(uint64(end))
		m := chooseMode(t.capabilities())
		var due time.Time
		triggered, armedPoll := false, false
		switch m {
		case modeWaitFor, modePrimary:
			due = now
		case modeSignal:
			if LSN(t.sig.flushed.Load()) >= end {
				switch {
				case armed != end:
					armed, armedAt, armedPolls, due, triggered = end, now, 0, now, true
				case armedPolls < signalEagerPolls:
					// Replay follows the flush within microseconds on an
					// idle standby: re-poll at once, paced by the round
					// trip, rather than on a timer that a quiet Go process
					// fires a millisecond late.
					due = now
				default:
					due = t.lastPoll.Add(t.pollInterval(now.Sub(armedAt)))
				}
				armedPoll = true
			} else {
				due = t.lastPoll.Add(t.cfg.MaxPollInterval)
			}
		default:
			due = t.lastPoll.Add(t.pollInterval(now.Sub(since)))
		}
		if wait := due.Sub(now); wait > 0 {
			t.connMu.Unlock()
			sleep(wait)
			continue
		}
		if triggered {
			t.stats.signalWakeups.Add(1)
		}
		if armedPoll {
			armedPolls++
		}
		t.lastPoll = now
		var err error
		if m == modeWaitFor {
			err = t.waitForLocked(target, end)
		} else {
			err = t.pollLocked()
		}
		t.connMu.Unlock()
		if err != nil {
			backoff = t.nextBackoff(backoff)
			retryAt = time.Now().Add(backoff)
		} else {
			backoff = 0
		}
	}
}

// signalEagerPolls is how many polls the poller makes back to back once the
// signal reported the smallest target's WAL, before it backs off: the
// first, plus two immediate retries for a startup process a little behind
// the walreceiver.
const signalEagerPolls = 3

func (t *Tracker) pollInterval(age time.Duration) time.Duration {
	return min(max(age/backoffDivisor, t.cfg.MinPollInterval), t.cfg.MaxPollInterval)
}

// next returns the smallest pending target and when its waiter registered,
// or ok=false — marking the poller stopped under the same lock that Wait
// uses to decide whether to start one — when there is nothing to do.
func (t *Tracker) next() (target LSN, since time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waiters.min()
	if t.closed || w == nil {
		t.polling = false
		t.minEnd.Store(0)
		t.idleSince.Store(time.Now().UnixNano())
		return 0, time.Time{}, false
	}
	return w.target, w.since, true
}

func (t *Tracker) nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return min(firstReconnectDelay, t.cfg.MaxReconnectDelay)
	}
	return min(2*d, t.cfg.MaxReconnectDelay)
}

// connectLocked opens the dedicated connection and probes it in one round
// trip: recovery state, replay position, server version and WAL geometry.
// The probe's observation wakes waiters like a poll would.
func (t *Tracker) connectLocked(ctx context.Context) error {
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, t.pgcfg.Copy())
	if err == nil {
		var (
			replay         *string
			inRec          bool
			version        int32
			block, segment int64
		)
		err = conn.QueryRow(ctx, probeSQL).Scan(&replay, &inRec, &version, &block, &segment)
		var r LSN
		if err == nil {
			r, err = parseReplay(replay)
		}
		if err == nil {
			if t.everConnected {
				t.stats.reconnects.Add(1)
				t.log.Info("lsn: reconnected to local database", "replayed", r, "in_recovery", inRec)
			}
			t.walBlock.Store(uint64(block))
			t.walSegment.Store(uint64(segment))
			t.serverVersion.Store(version)
			useWaitFor := capabilities{serverVersion: version, disableWaitFor: t.cfg.DisableWaitFor}.waitForUsable()
			t.stats.usingWaitFor.Store(useWaitFor)
			t.everConnected, t.failing = true, false
			t.conn = conn
			t.observe(r, inRec, true, time.Now())
			return nil
		}
		closeConn(conn)
	}
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	t.stats.pollErrors.Add(1)
	if !t.failing {
		t.log.Warn("lsn: cannot connect to local database; retrying with backoff", "err", err)
	}
	t.failing = true
	return fmt.Errorf("lsn: connect to local database: %w", err)
}

// pollLocked issues one client-side poll on the connection (connMu held).
// A nil result with the connection gone means: reconnect now.
func (t *Tracker) pollLocked() error {
	conn := t.conn
	ctx, cancel := context.WithTimeout(t.ctx, queryTimeout)
	defer cancel()
	t.stats.polls.Add(1)
	hookDone := t.pollHook()
	var (
		replay *string
		inRec  bool
	)
	err := conn.QueryRow(ctx, pollSQL).Scan(&replay, &inRec)
	at := time.Now()
	hookDone()
	if err == nil {
		var r LSN
		if r, err = parseReplay(replay); err == nil {
			t.observe(r, inRec, false, at)
			return nil
		}
	}
	return t.queryFailedLocked(conn, err, false)
}

// waitForLocked runs one WAIT FOR LSN for end (the smallest target's record
// end) on the connection (connMu held). A waiter with a smaller target, the
// last waiter leaving, or a Refresh cancels it.
func (t *Tracker) waitForLocked(target, end LSN) error {
	conn := t.conn
	ctx, cancel := context.WithTimeout(t.ctx, queryTimeout)
	defer cancel()
	call := &inflightCall{target: target, pg: conn.PgConn()}
	t.mu.Lock()
	t.inflight = call
	t.mu.Unlock()
	t.stats.polls.Add(1)
	t.stats.waitCalls.Add(1)
	hookDone := t.pollHook()
	// The simple protocol: WAIT FOR is a utility statement with a literal
	// LSN, and it must not run inside a transaction holding a snapshot.
	results, err := conn.PgConn().Exec(ctx, waitForSQL(end, waitForCap)).ReadAll()
	at := time.Now()
	hookDone()
	t.mu.Lock()
	cancelled := call.cancelled
	t.inflight = nil
	t.mu.Unlock()

	if err == nil {
		var status waitForStatus
		if status, err = waitForResult(results); err == nil {
			switch status {
			case waitForSuccess:
				t.observe(end, true, false, at)
			case waitForNotRecovery:
				// Promoted meanwhile (or a primary): a poll reports where
				// replay ended, which observe needs to tell targets replayed
				// before the promotion from those that never will be.
				return t.pollLocked()
			}
			return nil
		}
	}
	var pgErr *pgconn.PgError
	if cancelled && errors.As(err, &pgErr) && pgErr.Code == "57014" { // query_canceled, by us
		return nil
	}
	return t.queryFailedLocked(conn, err, true)
}

func waitForResult(results []*pgconn.Result) (waitForStatus, error) {
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 1 {
		return 0, errors.New("lsn: WAIT FOR LSN: unexpected result shape")
	}
	return parseWaitForStatus(string(results[0].Rows[0][0]))
}

// queryFailedLocked classifies a failed replay query. Server errors on a
// live connection (recovery conflicts, a stray cancel) are retried after a
// backoff; a lost connection is dropped so that the poller reconnects at
// once. A WAIT FOR LSN that the server refuses for any other reason is
// given up for this connection's lifetime.
func (t *Tracker) queryFailedLocked(conn *pgx.Conn, err error, waitFor bool) error {
	if t.ctx.Err() != nil {
		return nil // closing; the caller's loop ends
	}
	t.stats.pollErrors.Add(1)
	if !conn.IsClosed() {
		var pgErr *pgconn.PgError
		isPg := errors.As(err, &pgErr)
		switch {
		case waitFor && (!isPg || pgErr.Code != "40001" && pgErr.Code != "57014"):
			// Refused or answered oddly: not a transient conflict or cancel.
			t.stats.usingWaitFor.Store(false)
			t.log.Warn("lsn: WAIT FOR LSN unusable on this connection; falling back", "err", err)
			return fmt.Errorf("lsn: wait for: %w", err)
		case isPg:
			// Recovery conflicts (40001), a stray cancel (57014) and the
			// like leave the connection usable: retry after a short backoff.
			t.log.Debug("lsn: replay query failed; retrying", "err", err)
			return fmt.Errorf("lsn: poll: %w", err)
		}
		t.log.Warn("lsn: unexpected poll result; reconnecting", "err", err)
	} else {
		t.log.Warn("lsn: lost connection to local database; reconnecting", "err", err)
	}
	closeConn(conn)
	t.conn = nil
	return nil
}

func (t *Tracker) pollHook() (done func()) {
	if t.cfg.PollHook == nil {
		return func() {}
	}
	if d := t.cfg.PollHook(); d != nil {
		return d
	}
	return func() {}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// parseReplay reads pg_last_wal_replay_lsn()::text. NULL (a primary) maps to
// zero; the recovery column that comes with it decides what that means.
func parseReplay(s *string) (LSN, error) {
	if s == nil {
		return 0, nil
	}
	return Parse(*s)
}
