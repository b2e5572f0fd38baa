//go:build !linux

package wan

import "time"

// preciseSleep is time.Sleep where nanosleep(2) is not used: less precise,
// and the spin that follows it makes up for less.
func preciseSleep(d time.Duration) { time.Sleep(d) }
