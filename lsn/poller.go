package lsn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// run is the poller: it exists only while waiters do. Each round it looks at
// the smallest pending target and either calls the wait function (long
// waits, when installed) or polls, pausing between polls for the target's
// age / backoffDivisor within [MinPollInterval, MaxPollInterval]. It returns
// as soon as no waiter is left, so an idle tracker issues no queries and has
// no goroutine.
func (t *Tracker) run() {
	defer t.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sleep := func(d time.Duration) {
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-t.kick: // the smallest target changed: re-plan now
		case <-t.ctx.Done():
		}
		timer.Stop()
	}

	var lastPoll, retryAt time.Time
	var backoff time.Duration
	for {
		target, age, ok := t.next()
		if !ok {
			return
		}
		if wait := time.Until(retryAt); wait > 0 {
			sleep(wait)
			continue
		}
		t.connMu.Lock()
		if t.conn == nil {
			err := t.connectLocked(t.ctx)
			t.connMu.Unlock()
			if err != nil {
				backoff = t.nextBackoff(backoff)
				retryAt = time.Now().Add(backoff)
			} else {
				backoff = 0
			}
			continue
		}
		useFn := t.waitFn && t.cfg.WaitFunctionAfter >= 0 && age >= t.cfg.WaitFunctionAfter
		if !useFn {
			interval := min(max(age/backoffDivisor, t.cfg.MinPollInterval), t.cfg.MaxPollInterval)
			if wait := time.Until(lastPoll.Add(interval)); wait > 0 {
				t.connMu.Unlock()
				sleep(wait)
				continue
			}
		}
		lastPoll = time.Now()
		err := t.pollLocked(target, useFn)
		t.connMu.Unlock()
		if err != nil {
			backoff = t.nextBackoff(backoff)
			retryAt = time.Now().Add(backoff)
		} else {
			backoff = 0
		}
	}
}

// next returns the smallest pending target and how long its waiter has
// waited, or ok=false — marking the poller stopped under the same lock that
// Wait uses to decide whether to start one — when there is nothing to do.
func (t *Tracker) next() (target LSN, age time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waiters.min()
	if t.closed || w == nil {
		t.polling = false
		return 0, 0, false
	}
	return w.target, time.Since(w.since), true
}

func (t *Tracker) nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return min(firstReconnectDelay, t.cfg.MaxReconnectDelay)
	}
	return min(2*d, t.cfg.MaxReconnectDelay)
}

// connectLocked opens the dedicated connection and probes it in one round
// trip: recovery state, replay position, and whether the wait function is
// installed. The probe's observation wakes waiters like a poll would.
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
			inRec, hasF    bool
			block, segment int64
		)
		err = conn.QueryRow(ctx, probeSQL).Scan(&replay, &inRec, &hasF, &block, &segment)
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
			t.everConnected, t.failing = true, false
			t.conn, t.waitFn = conn, hasF
			t.stats.usingWaitFunction.Store(hasF)
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

// pollLocked issues one replay query on the connection (connMu held). A
// nil result with the connection gone means: reconnect now.
func (t *Tracker) pollLocked(target LSN, useFn bool) error {
	conn := t.conn
	ctx, cancel := context.WithTimeout(t.ctx, queryTimeout)
	defer cancel()
	var call *inflightCall
	if useFn {
		call = &inflightCall{target: target, pg: conn.PgConn()}
		t.mu.Lock()
		t.inflight = call
		t.mu.Unlock()
		t.stats.waitCalls.Add(1)
	}
	t.stats.polls.Add(1)
	var hookDone func()
	if t.cfg.PollHook != nil {
		hookDone = t.cfg.PollHook()
	}

	var (
		replay *string
		inRec  bool
		err    error
	)
	if useFn {
		err = conn.QueryRow(ctx, waitSQL, t.recordEnd(target).String(), int32(waitCallCap/time.Millisecond)).Scan(&replay, &inRec)
	} else {
		err = conn.QueryRow(ctx, pollSQL).Scan(&replay, &inRec)
	}
	at := time.Now()
	if hookDone != nil {
		hookDone()
	}
	cancelled := false
	if call != nil {
		t.mu.Lock()
		cancelled = call.cancelled
		t.inflight = nil
		t.mu.Unlock()
	}

	if err == nil {
		var r LSN
		if r, err = parseReplay(replay); err == nil {
			t.observe(r, inRec, false, at)
			return nil
		}
	}
	if t.ctx.Err() != nil {
		return nil // closing; the caller's loop ends
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !conn.IsClosed() {
		switch {
		case cancelled && pgErr.Code == "57014": // query_canceled, by us
			return nil
		case useFn && (pgErr.Code == "42883" || pgErr.Code == "42501"): // undefined_function, insufficient_privilege
			t.waitFn = false
			t.stats.usingWaitFunction.Store(false)
			t.log.Warn("lsn: wait function unusable on this connection; polling instead", "err", err)
		}
		// Recovery conflicts (40001), a stray cancel (57014) and the like
		// leave the connection usable: retry after a short backoff.
		t.stats.pollErrors.Add(1)
		t.log.Debug("lsn: poll failed; retrying", "err", err)
		return fmt.Errorf("lsn: poll: %w", err)
	}
	t.stats.pollErrors.Add(1)
	t.log.Warn("lsn: lost connection to local database; reconnecting", "err", err)
	closeConn(conn)
	t.conn = nil
	return nil
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
