package router

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassifierMatchesAnalyze(t *testing.T) {
	c := NewClassifier(1024)
	for range 2 { // the second round is served from the cache
		for _, r := range loadCorpus(t) {
			assert.Equalf(t, Analyze(r.SQL), c.Analyze(r.SQL), "%s", r)
			assert.Equalf(t, Classify(r.SQL), c.Classify(r.SQL), "%s", r)
		}
	}
	assert.Positive(t, c.Len())
}

func TestClassifierWithoutCache(t *testing.T) {
	var nilC *Classifier
	assert.Equal(t, Write, nilC.Classify("DELETE FROM t"))
	assert.Zero(t, nilC.Len())

	off := NewClassifier(0)
	assert.Equal(t, Read, off.Classify("SELECT 1"))
	assert.Zero(t, off.Len(), "capacity 0 caches nothing")
}

func TestClassifierBounded(t *testing.T) {
	const capacity = 100
	c := NewClassifier(capacity)
	for i := range 10 * capacity {
		c.Analyze(fmt.Sprintf("SELECT %d", i))
	}
	// Rounded up to whole shards.
	assert.LessOrEqual(t, c.Len(), (capacity+numShards-1)/numShards*numShards)
	assert.Positive(t, c.Len())

	long := "SELECT '" + strings.Repeat("x", MaxCachedLen) + "'"
	before := c.Len()
	assert.Equal(t, Read, c.Classify(long))
	assert.Equal(t, before, c.Len(), "texts longer than MaxCachedLen are not cached")
}

func TestClassifierHitDoesNotAllocate(t *testing.T) {
	c := NewClassifier(64)
	for _, q := range benchQueries {
		c.Analyze(q.sql)
		allocs := testing.AllocsPerRun(100, func() { c.Analyze(q.sql) })
		assert.Zerof(t, allocs, "%s", q.name)
	}
}

// Run with -race: concurrent hits, misses and evictions on shared shards.
func TestClassifierConcurrent(t *testing.T) {
	c := NewClassifier(32)
	recs := loadCorpus(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				r := recs[(i*7+g*13)%len(recs)]
				if got := c.Classify(r.SQL); got != r.Label {
					errs <- fmt.Sprintf("%s: got %v", r, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		require.Fail(t, e)
	}
	assert.LessOrEqual(t, c.Len(), 32)
}
