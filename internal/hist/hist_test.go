package hist

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestQuantiles(t *testing.T) {
	var h Histogram
	assert.Equal(t, []time.Duration{0, 0}, h.Quantiles(0.5, 0.99), "empty")
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	q := h.Quantiles(0.5, 0.99, 1)
	for i, want := range []time.Duration{50 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond} {
		assert.GreaterOrEqual(t, q[i], want, "quantile %d bounds the true value from above", i)
		assert.LessOrEqual(t, q[i], want*5/4+time.Millisecond, "quantile %d overstates by at most 25%%", i)
	}
	assert.Equal(t, uint64(100), h.Count())
	assert.Equal(t, 5050*time.Millisecond, h.Sum())
	var n uint64
	prev := time.Duration(-1)
	h.Buckets(func(upper time.Duration, c uint64) {
		assert.Greater(t, upper, prev, "buckets ascend")
		prev = upper
		n += c
	})
	assert.Equal(t, uint64(100), n)
}

func TestBucketBounds(t *testing.T) {
	var h Histogram
	assert.Equal(t, []time.Duration{0, 0}, h.Quantiles(0.5, 0.99))
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	q := h.Quantiles(0.5, 0.99, 1)
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
