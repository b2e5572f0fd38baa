package wan

import (
	"syscall"
	"time"
)

// preciseSleep sleeps d with the kernel's high-resolution timer: the
// goroutine blocks its thread in nanosleep(2) (the runtime hands the P to
// another thread meanwhile), which wakes about 80 µs late, where a Go timer
// wakes up to a millisecond late.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		err := syscall.Nanosleep(&ts, &rem)
		if err != syscall.EINTR {
			return
		}
		ts = rem
	}
}
