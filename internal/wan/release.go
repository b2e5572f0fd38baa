package wan

import (
	"runtime"
	"time"
)

// The three steps of a release (see the package documentation): a Go timer
// until coarseMargin before the deadline, a precise sleep until spinMargin
// before it, a spin for the rest. coarseMargin covers a Go timer's lateness
// on a busy machine; spinMargin a precise sleep's (on Linux, the default
// 50 µs timer slack plus the wake-up).
const (
	coarseMargin = 2 * time.Millisecond
	spinMargin   = 150 * time.Microsecond
)

type waitResult int

const (
	waitDue     waitResult = iota // the deadline has passed
	waitStopped                   // stop was closed
	waitChanged                   // changed was closed
)

// waitUntil blocks until deadline, or until stop or changed is closed
// (checked during the coarse wait: the fine steps last at most
// coarseMargin).
func waitUntil(deadline time.Time, stop, changed <-chan struct{}) waitResult {
	if left := time.Until(deadline) - coarseMargin; left > 0 {
		t := time.NewTimer(left)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return waitStopped
		case <-changed:
			t.Stop()
			return waitChanged
		}
	}
	select {
	case <-stop:
		return waitStopped
	case <-changed:
		return waitChanged
	default:
	}
	if left := time.Until(deadline) - spinMargin; left > 0 {
		preciseSleep(left)
	}
	for time.Now().Before(deadline) {
		// Let the P's other goroutines run; the spin is at most
		// spinMargin, usually a few tens of microseconds.
		runtime.Gosched()
	}
	return waitDue
}
