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
			assert.Equalf(t, AnalyzeOpts(r.SQL, r.Opts), c.AnalyzeOpts(r.SQL, r.Opts), "%s", r)
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

// The same text reads differently under standard_conforming_strings = off:
// the cache must not answer one session's question with the other's.
func TestClassifierKeysOnOptions(t *testing.T) {
	const q = `SELECT 'a\'', pg_try_advisory_lock(42) --'`
	nonStd := Options{NonStandardStrings: true}
	for _, c := range []*Classifier{NewClassifier(64), nil} {
		for range 2 {
			assert.Equal(t, Read, c.Analyze(q).Class)
			assert.Equal(t, SessionBound, c.AnalyzeOpts(q, nonStd).Class)
			assert.Equal(t, BoundAdvisoryLock, c.AnalyzeOpts(q, nonStd).Bound)
			assert.Equal(t, Read, c.AnalyzeOpts(q, Options{}).Class)
		}
	}
	c := NewClassifier(64)
	c.Analyze(q)
	c.AnalyzeOpts(q, nonStd)
	assert.Equal(t, 2, c.Len(), "one entry per text and options")
}

func TestClassifierHitDoesNotAllocate(t *testing.T) {
	c := NewClassifier(64)
	for _, q := range benchQueries {
		c.Analyze(q.sql)
		allocs := testing.AllocsPerRun(100, func() { c.Analyze(q.sql) })
		assert.Zerof(t, allocs, "%s", q.name)
		nonStd := Options{NonStandardStrings: true}
		c.AnalyzeOpts(q.sql, nonStd)
		allocs = testing.AllocsPerRun(100, func() { c.AnalyzeOpts(q.sql, nonStd) })
		assert.Zerof(t, allocs, "%s (nonstandard strings)", q.name)
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
				if got := c.AnalyzeOpts(r.SQL, r.Opts).Class; got != r.Label {
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
	assert.LessOrEqual(t, c.Len(), numVariants*32, "32 per Options variant")
}
