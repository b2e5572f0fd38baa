package lsn

import (
	"sync/atomic"
	"time"

	"github.com/flypg/flypg/internal/hist"
)

// Stats is a snapshot of a Tracker's counters since NewTracker.
type Stats struct {
	// Waits counts Wait calls on an open tracker.
	Waits uint64
	// Immediate counts Waits satisfied at once, without touching the
	// database: the target was at or below Replayed(), or the local database
	// is known to be a primary.
	Immediate uint64
	// Timeouts counts Waits that ended because their context ended
	// (deadline or cancellation) before replay reached the target.
	Timeouts uint64
	// Polls counts replay-position queries: client-side polls plus
	// WAIT FOR LSN statements. The one probe that opens each connection and
	// Refresh calls are not counted, so a tracker on a primary shows zero.
	Polls uint64
	// WaitCalls counts the Polls that were WAIT FOR LSN statements
	// (PostgreSQL 19+), which wait on the server.
	WaitCalls uint64
	// PollErrors counts failed polls and failed connection attempts.
	PollErrors uint64
	// Reconnects counts connections opened after a previous one was lost.
	Reconnects uint64
	// Refreshes counts Refresh calls.
	Refreshes uint64
	// Waiters is the number of Waits blocked right now.
	Waiters int
	// UsingWaitFor reports that the server has WAIT FOR LSN (PostgreSQL
	// 19+) and the tracker waits with it.
	UsingWaitFor bool
	// SignalActive reports that the WAL-arrival signal's replication
	// connection is streaming right now.
	SignalActive bool
	// SignalWakeups counts the polls the signal triggered: WAL reaching the
	// smallest pending target arrived, and the tracker polled at once to
	// confirm its replay.
	SignalWakeups uint64
	// SignalConnects counts replication connections that started
	// streaming; SignalFailures counts attempts that failed or streams that
	// broke (the tracker then polls by itself and retries the signal with
	// backoff, up to a minute).
	SignalConnects, SignalFailures uint64
	// Mode is how the tracker learns of replay right now: "wait-for"
	// (WAIT FOR LSN), "signal" (WAL-arrival signal plus confirming polls),
	// "poll" (client-side polls only), "primary" (nothing to wait for) or
	// "" (not connected yet).
	Mode string
	// WakeDelayP50 and WakeDelayP99 estimate the time from the moment a
	// poll's answer arrived to the moment the satisfied Wait returned — the
	// tracker's own overhead, not the polling interval. They are read from a
	// log-scale histogram, so they overstate by up to 25%.
	WakeDelayP50, WakeDelayP99 time.Duration

	// Deprecated: the tracker no longer uses a server-side wait function;
	// always false. See UsingWaitFor.
	UsingWaitFunction bool
}

// PollsPerWait is the average number of replay queries per Wait that had
// to wait (Waits minus Immediate): Polls / (Waits - Immediate), or 0.
func (s Stats) PollsPerWait() float64 {
	if s.Waits <= s.Immediate {
		return 0
	}
	return float64(s.Polls) / float64(s.Waits-s.Immediate)
}

// counters are updated without the tracker's mutex so that Stats and the hot
// paths never contend on it for bookkeeping.
type counters struct {
	waits, immediate, timeouts   atomic.Uint64
	polls, waitCalls, pollErrors atomic.Uint64
	reconnects, refreshes        atomic.Uint64
	signalWakeups                atomic.Uint64
	signalConnects               atomic.Uint64
	signalFailures               atomic.Uint64
	usingWaitFor                 atomic.Bool
	wakeDelay                    hist.Histogram
}
