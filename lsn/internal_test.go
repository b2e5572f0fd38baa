package lsn

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHeapAgainstSortedSlice drives random pushes, pops and removals and
// checks the heap against a plain sorted slice.
func TestHeapAgainstSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h waiterHeap
	var live []*waiter
	for range 20000 {
		switch op := rng.IntN(3); {
		case op == 0 || len(live) == 0:
			w := &waiter{target: LSN(rng.IntN(500))}
			h.push(w)
			live = append(live, w)
		case op == 1:
			w := h.pop()
			require.Equal(t, -1, w.index)
			minT := slices.MinFunc(live, func(a, b *waiter) int { return int(a.target) - int(b.target) }).target
			require.Equal(t, minT, w.target, "pop returns a smallest target")
			live = slices.DeleteFunc(live, func(x *waiter) bool { return x == w })
		default:
			w := live[rng.IntN(len(live))]
			require.Same(t, w, h[w.index], "index tracks position")
			h.remove(w.index)
			live = slices.DeleteFunc(live, func(x *waiter) bool { return x == w })
		}
		require.Len(t, h, len(live))
		for i := 1; i < len(h); i++ {
			require.LessOrEqual(t, h[(i-1)/2].target, h[i].target, "heap order")
			require.Equal(t, i, h[i].index)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	assert.Equal(t, []time.Duration{0, 0}, h.quantiles(0.5, 0.99))
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	q := h.quantiles(0.5, 0.99, 1)
	for i, want := range []time.Duration{500 * time.Microsecond, 990 * time.Microsecond, time.Millisecond} {
		assert.GreaterOrEqual(t, q[i], want, "a bucket's upper bound never understates")
		assert.LessOrEqual(t, q[i], want*5/4, "and overstates by at most 25%%")
	}
	for _, d := range []time.Duration{0, 1, 2, 3, 4, 7, 8, 1023, time.Hour, 1<<63 - 1} {
		i := bucketOf(d)
		assert.GreaterOrEqual(t, bucketUpper(i), max(d, 1), "bucket of %v", d)
		if prev := bucketOf(d - 1); d > 1 && prev != i {
			assert.Less(t, bucketUpper(prev), d, "bucket of %v is the first that fits", d)
		}
	}
}

func TestRecordEnd(t *testing.T) {
	const block, segment = 8192, 1 << 20
	for _, tc := range []struct{ in, want LSN }{
		{0x1_00002018, 0x1_00002000}, // short page header
		{0x1_00100028, 0x1_00100000}, // long header, first page of a segment
		{0x1_00002028, 0x1_00002028}, // offset 40 on an ordinary page: a real record end
		{0x1_00100018, 0x1_00100000}, // inside a long header: not a record end either
		{0x1_00002000, 0x1_00002000}, // already a boundary
		{0x1_00002019, 0x1_00002019}, // anything else stays
		{0x1_00002017, 0x1_00002017},
	} {
		assert.Equal(t, tc.want, recordEnd(tc.in, block, segment), "%s", tc.in)
	}
	assert.Equal(t, LSN(0x2018), recordEnd(0x2018, 0, 0), "unknown sizes: unchanged")
}
