package lsn

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flypg/flypg/lsn/internal/walstream"
)

// SignalApplicationNameSuffix is appended to Config.ApplicationName for
// the WAL-arrival signal's replication connection, so that
// pg_stat_replication and pg_stat_activity tell it from the tracker's
// query connection ("flypg-lsn-tracker-signal" by default).
const SignalApplicationNameSuffix = "-signal"

const (
	// signalStatusInterval is how often the signal answers the walsender
	// unasked, well inside the default wal_sender_timeout of 60 s.
	signalStatusInterval = 10 * time.Second
	// signalFirstRetry and signalMaxRetry bound the backoff after the
	// signal failed (no REPLICATION privilege, no free walsender slot, a
	// broken stream): the tracker polls meanwhile.
	signalFirstRetry = time.Second
	signalMaxRetry   = time.Minute
)

// signalState is the WAL-arrival signal's bookkeeping. The tracker's mutex
// guards running, retryAt, backoff and logged; the atomics are read by the
// poller and Stats without it.
type signalState struct {
	running bool      // a signal goroutine exists
	retryAt time.Time // not before this, after a failure
	backoff time.Duration
	logged  bool // the current outage was logged

	streaming atomic.Bool
	// flushed is the standby's flush position as last reported by its
	// walsender: WAL up to it can be replayed.
	flushed atomic.Uint64
}

func (t *Tracker) sigStreaming() bool { return t.sig.streaming.Load() }

// maybeStartSignal starts the signal goroutine when the tracker would use
// it (a standby without WAIT FOR LSN, signal enabled), it is not running,
// and no failure backoff is pending. The poller calls it each round, so the
// signal comes with the first waiter and returns after a failure once the
// backoff has passed.
func (t *Tracker) maybeStartSignal(now time.Time) {
	if !t.capabilities().wantSignal() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.sig.running || now.Before(t.sig.retryAt) {
		return
	}
	t.sig.running = true
	t.wg.Add(1)
	go t.runSignal()
}

// runSignal streams from the local standby until no waiter has been
// pending for WALSignalLinger, the stream ends, or it fails; then it
// records how to retry and kicks the poller, which polls by itself until
// the signal is back.
func (t *Tracker) runSignal() {
	defer t.wg.Done()
	err := t.streamSignal()
	t.sig.streaming.Store(false)

	t.mu.Lock()
	t.sig.running = false
	now := time.Now()
	switch {
	case err == nil:
		t.sig.backoff = 0
	case errors.Is(err, walstream.ErrEndOfStream):
		// A timeline switch or a promotion: stream the new timeline (or
		// find out it is a primary) right away.
		t.stats.signalFailures.Add(1)
		t.sig.backoff = 0
		t.log.Info("lsn: WAL-arrival signal: stream ended (timeline switch or promotion); reconnecting")
	default:
		t.stats.signalFailures.Add(1)
		t.sig.backoff = min(max(2*t.sig.backoff, signalFirstRetry), signalMaxRetry)
		t.sig.retryAt = now.Add(t.sig.backoff)
		if !t.sig.logged {
			t.sig.logged = true
			t.log.Info("lsn: WAL-arrival signal unavailable; polling instead and retrying with backoff",
				"err", err, "retry_in", t.sig.backoff)
		} else {
			t.log.Debug("lsn: WAL-arrival signal still unavailable", "err", err, "retry_in", t.sig.backoff)
		}
	}
	t.mu.Unlock()
	t.kickPoller()
}

// streamSignal runs one replication connection. It returns nil when it
// stopped because it was no longer needed (linger passed, promotion, Close).
func (t *Tracker) streamSignal() error {
	ctx, cancel := context.WithTimeout(t.ctx, connectTimeout)
	cfg := t.pgcfg.Config.Copy()
	cfg.RuntimeParams["application_name"] = t.cfg.ApplicationName + SignalApplicationNameSuffix
	s, err := walstream.Connect(ctx, cfg)
	cancel()
	if err != nil {
		if t.ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("lsn: WAL-arrival signal: %w", err)
	}
	defer s.Close()
	t.sig.flushed.Store(s.Start)
	t.sig.streaming.Store(true)
	t.stats.signalConnects.Add(1)
	t.mu.Lock()
	if t.sig.logged {
		t.log.Info("lsn: WAL-arrival signal streaming again")
	}
	t.sig.logged = false
	t.mu.Unlock()
	t.kickPoller()

	linger := t.cfg.WALSignalLinger
	// The receive deadline also paces the linger check: a quarter of it, so
	// the connection closes between 1 and 1.25 times linger after the last
	// waiter left.
	check := max(linger/4, 10*time.Millisecond)
	nextStatus := time.Now().Add(signalStatusInterval)
	for {
		now := time.Now()
		if !t.capabilities().wantSignal() {
			return nil // promoted, or WAIT FOR LSN took over
		}
		if idle := t.idleSince.Load(); idle != 0 && now.Sub(time.Unix(0, idle)) >= linger {
			return nil
		}
		if !now.Before(nextStatus) {
			if err := s.SendStatus(); err != nil {
				return err
			}
			nextStatus = now.Add(signalStatusInterval)
		}
		deadline := now.Add(check)
		if nextStatus.Before(deadline) {
			deadline = nextStatus
		}
		rctx, cancel := context.WithDeadline(t.ctx, deadline)
		ev, err := s.Next(rctx)
		cancel()
		switch {
		case err == nil:
		case t.ctx.Err() != nil:
			return nil
		case pgconn.Timeout(err):
			continue
		default:
			return err
		}
		if ev.WALEnd > t.sig.flushed.Load() {
			t.sig.flushed.Store(ev.WALEnd)
			// Seen by the poller either here or when it next reads flushed
			// after publishing minEnd: no lost wake-up.
			if m := t.minEnd.Load(); m != 0 && ev.WALEnd >= m {
				t.kickPoller()
			}
		}
		if ev.ReplyRequested {
			if err := s.SendStatus(); err != nil {
				return err
			}
			nextStatus = time.Now().Add(signalStatusInterval)
		}
	}
}
