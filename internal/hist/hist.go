// Package hist is a lock-free histogram of durations, for the latency
// figures in flypg's Stats: log-linear buckets, four per power of two
// nanoseconds — enough to tell 100 µs from 130 µs without storing samples
// or taking a lock on the hot path.
package hist

import (
	"math/bits"
	"sync/atomic"
	"time"
)

const subBuckets = 4

// Histogram counts durations. The zero value is ready to use; it is safe
// for concurrent use.
type Histogram struct {
	buckets [64 * subBuckets]atomic.Uint64
	sum     atomic.Int64
	count   atomic.Uint64
}

func bucketOf(d time.Duration) int {
	v := uint64(max(d, 1))
	e := bits.Len64(v) - 1 // floor(log2 v)
	if e < 2 {
		return int(v) // 1..3 ns: exact
	}
	sub := (v >> (e - 2)) & (subBuckets - 1)
	return e*subBuckets + int(sub)
}

// bucketUpper is the largest duration that falls into bucket i.
func bucketUpper(i int) time.Duration {
	e, sub := i/subBuckets, uint64(i%subBuckets)
	if e < 2 {
		return time.Duration(i)
	}
	return time.Duration((subBuckets+sub+1)<<(e-2) - 1)
}

// Record counts one duration.
func (h *Histogram) Record(d time.Duration) {
	h.buckets[bucketOf(d)].Add(1)
	h.sum.Add(int64(d))
	h.count.Add(1)
}

// Count and Sum are the number and total of the recorded durations.
func (h *Histogram) Count() uint64      { return h.count.Load() }
func (h *Histogram) Sum() time.Duration { return time.Duration(h.sum.Load()) }

// Quantiles returns, for each q in (0, 1], the upper bound of the bucket
// holding that quantile — an overestimate by at most 25% — or zeros when
// nothing was recorded.
func (h *Histogram) Quantiles(qs ...float64) []time.Duration {
	var counts [len(h.buckets)]uint64
	var total uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	out := make([]time.Duration, len(qs))
	if total == 0 {
		return out
	}
	for k, q := range qs {
		rank := uint64(q*float64(total) + 0.5)
		rank = min(max(rank, 1), total)
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= rank {
				out[k] = bucketUpper(i)
				break
			}
		}
	}
	return out
}

// Buckets calls f for each non-empty bucket, in increasing order, with its
// upper bound and count: what a Prometheus histogram needs.
func (h *Histogram) Buckets(f func(upper time.Duration, count uint64)) {
	for i := range h.buckets {
		if c := h.buckets[i].Load(); c > 0 {
			f(bucketUpper(i), c)
		}
	}
}
