package wan

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkReleaseError measures the release alone: how late a chunk due
// at a deadline leaves, for this package's waitUntil and for what
// toxiproxy's latency toxic does (a Go timer for the remaining delay), one
// of each in turn in the same run, 5 ms after the chunk was read. The
// metrics are lateness quantiles in microseconds and the ratios timer /
// waitUntil.
func BenchmarkReleaseError(b *testing.B) {
	const delay = 5 * time.Millisecond
	never := make(chan struct{})
	var late [2][]time.Duration
	for b.Loop() {
		readAt := time.Now()
		deadline := readAt.Add(delay)
		if waitUntil(deadline, never, never) != waitDue {
			b.Fatal("waitUntil returned before the deadline")
		}
		late[0] = append(late[0], time.Since(deadline))

		readAt = time.Now()
		deadline = readAt.Add(delay)
		<-time.After(delay - time.Since(readAt)) // toxiproxy's LatencyToxic.Pipe
		late[1] = append(late[1], time.Since(deadline))
	}
	q := func(k int, p float64) float64 {
		s := slices.Clone(late[k])
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Microsecond)
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}} {
		b.ReportMetric(q(0, p.q), "waitUntil-"+p.name+"-µs")
		b.ReportMetric(q(1, p.q), "timer-"+p.name+"-µs")
		b.ReportMetric(q(1, p.q)/max(q(0, p.q), 0.001), p.name+"-ratio")
	}
}

// TestWaitUntil checks the release's contract: never before the deadline,
// and at once when stopped or when the latency changes.
func TestWaitUntil(t *testing.T) {
	never := make(chan struct{})
	for _, d := range []time.Duration{0, 100 * time.Microsecond, 3 * time.Millisecond} {
		deadline := time.Now().Add(d)
		if got := waitUntil(deadline, never, never); got != waitDue {
			t.Fatalf("waitUntil(%v) = %v, want due", d, got)
		}
		if now := time.Now(); now.Before(deadline) {
			t.Fatalf("waitUntil(%v) returned %v early", d, deadline.Sub(now))
		}
	}
	closed := make(chan struct{})
	close(closed)
	if got := waitUntil(time.Now().Add(time.Hour), closed, never); got != waitStopped {
		t.Fatalf("stopped: got %v", got)
	}
	if got := waitUntil(time.Now().Add(time.Hour), never, closed); got != waitChanged {
		t.Fatalf("changed: got %v", got)
	}
	// Within the fine steps (under coarseMargin) stop is still seen first.
	if got := waitUntil(time.Now().Add(coarseMargin/2), closed, never); got != waitStopped {
		t.Fatalf("stopped near the deadline: got %v", got)
	}
}
