package lsn

import (
	"fmt"
	"time"
)

// mode is how the poller learns that replay reached a target.
type mode uint8

const (
	modeUnknown mode = iota // not connected yet
	modePrimary             // not in recovery: nothing to wait for
	modePoll                // client-side polls with backoff
	modeSignal              // WAL-arrival signal, then a poll to confirm replay
	modeWaitFor             // WAIT FOR LSN on the server (PostgreSQL 19+)
)

func (m mode) String() string {
	switch m {
	case modePrimary:
		return "primary"
	case modePoll:
		return "poll"
	case modeSignal:
		return "signal"
	case modeWaitFor:
		return "wait-for"
	}
	return ""
}

// waitForVersion is the first server_version_num with WAIT FOR LSN.
const waitForVersion = 190000

// capabilities is what the tracker knows about the local database and its
// own configuration; the mode follows from it alone.
type capabilities struct {
	connected       bool
	recovery        recoveryState
	serverVersion   int32 // server_version_num
	waitForBroken   bool  // WAIT FOR LSN failed on this connection
	disableWaitFor  bool
	disableSignal   bool
	signalStreaming bool
}

// waitForUsable: the server has WAIT FOR LSN, it is allowed, and it has not
// failed on this connection (a server that reports 19 but refuses the
// statement, e.g. a fork, falls back for the connection's lifetime).
func (c capabilities) waitForUsable() bool {
	return !c.disableWaitFor && c.serverVersion >= waitForVersion && !c.waitForBroken
}

// wantSignal: a standby that will not be served by WAIT FOR LSN benefits
// from the WAL-arrival signal. (Before the first connection nothing is
// known; the signal starts once the probe has answered.)
func (c capabilities) wantSignal() bool {
	return c.connected && c.recovery == recoveryYes && !c.disableSignal && !c.waitForUsable()
}

// chooseMode picks the best way to wait: the server's own wait where it
// exists (woken by the startup process, no snapshot held), otherwise the
// signal while it streams, otherwise plain polls.
func chooseMode(c capabilities) mode {
	switch {
	case !c.connected:
		return modeUnknown
	case c.recovery == recoveryNo:
		return modePrimary
	case c.waitForUsable():
		return modeWaitFor
	case c.signalStreaming && !c.disableSignal:
		return modeSignal
	}
	return modePoll
}

// waitForSQL is the WAIT FOR LSN statement for target with a timeout. The
// LSN is a literal (the statement takes no parameters) printed by LSN.String,
// so it is always well formed. NO_THROW turns a timeout and a promotion into
// a status row instead of an error.
func waitForSQL(target LSN, timeout time.Duration) string {
	return fmt.Sprintf("WAIT FOR LSN '%s' WITH (TIMEOUT '%dms', NO_THROW)", target, max(timeout.Milliseconds(), 1))
}

// waitForStatus is the outcome of one WAIT FOR LSN.
type waitForStatus uint8

const (
	waitForSuccess     waitForStatus = iota + 1 // replayed at least the target
	waitForTimeout                              // not yet
	waitForNotRecovery                          // a primary, or promoted meanwhile
)

func parseWaitForStatus(s string) (waitForStatus, error) {
	switch s {
	case "success":
		return waitForSuccess, nil
	case "timeout":
		return waitForTimeout, nil
	case "not in recovery":
		return waitForNotRecovery, nil
	}
	return 0, fmt.Errorf("lsn: WAIT FOR LSN returned unknown status %q", s)
}

// capabilities collects the current state for chooseMode. Callers need not
// hold any lock; the fields are read atomically or under t.mu one by one,
// so the answer is a consistent-enough snapshot for planning.
func (t *Tracker) capabilities() capabilities {
	t.mu.Lock()
	rec := t.recovery
	t.mu.Unlock()
	v := t.serverVersion.Load()
	return capabilities{
		connected:       v != 0,
		recovery:        rec,
		serverVersion:   v,
		waitForBroken:   v >= waitForVersion && !t.stats.usingWaitFor.Load() && !t.cfg.DisableWaitFor,
		disableWaitFor:  t.cfg.DisableWaitFor,
		disableSignal:   t.cfg.DisableWALSignal,
		signalStreaming: t.sigStreaming(),
	}
}

func (t *Tracker) modeName() string { return chooseMode(t.capabilities()).String() }
