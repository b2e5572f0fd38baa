package router

import (
	"hash/maphash"
	"strings"
	"sync"
)

// MaxCachedLen is the longest query text a Classifier caches. Longer texts
// are usually generated with inline values (bulk inserts), rarely repeat,
// and would hold much memory; they are classified on every call.
const MaxCachedLen = 4096

// numShards spreads lock contention; a power of two.
const numShards = 16

// Classifier is AnalyzeOpts with a bounded cache keyed by the query text
// and the Options. It is safe for concurrent use. A nil *Classifier
// classifies without caching.
type Classifier struct {
	seed     maphash.Seed
	perShard int
	shards   [numShards]shard
}

type shard struct {
	mu sync.RWMutex
	// m holds one map per Options variant (see variant): string keys keep
	// lookups on the runtime's fast path for strings.
	m [numVariants]map[string]Result
	_ [24]byte // RWMutex (24) + maps (16) + 24: one 64-byte cache line per shard
}

// numVariants is the number of distinct Options.
const numVariants = 2

// variant numbers the Options a cached Result depends on: the same text
// reads differently under standard_conforming_strings = off.
func variant(o Options) int {
	if o.NonStandardStrings {
		return 1
	}
	return 0
}

// NewClassifier returns a Classifier that caches up to about capacity
// results (rounded up to a multiple of 16). A capacity ≤ 0 disables the
// cache. When a shard is full, an arbitrary entry of it is evicted: random
// eviction keeps the hot texts of an ORM workload with no bookkeeping on
// hits.
func NewClassifier(capacity int) *Classifier {
	c := &Classifier{seed: maphash.MakeSeed()}
	if capacity > 0 {
		c.perShard = (capacity + numShards - 1) / numShards
	}
	return c
}

// Classify returns the class of query, as the package-level Classify does.
func (c *Classifier) Classify(query string) Class { return c.Analyze(query).Class }

// Analyze returns what the package-level Analyze returns for query, from
// the cache when it can.
func (c *Classifier) Analyze(query string) Result { return c.AnalyzeOpts(query, Options{}) }

// AnalyzeOpts returns what the package-level AnalyzeOpts returns for query
// and o, from the cache when it can.
func (c *Classifier) AnalyzeOpts(query string, o Options) Result {
	if c == nil || c.perShard == 0 || len(query) > MaxCachedLen {
		return AnalyzeOpts(query, o)
	}
	s := &c.shards[maphash.String(c.seed, query)&(numShards-1)]
	v := variant(o)
	s.mu.RLock()
	r, ok := s.m[v][query]
	s.mu.RUnlock()
	if ok {
		return r
	}
	r = AnalyzeOpts(query, o)
	s.mu.Lock()
	m := s.m[v]
	if m == nil {
		m = make(map[string]Result, min(c.perShard, 64)) // grows as needed
		s.m[v] = m
	}
	if _, dup := m[query]; !dup {
		if s.len() >= c.perShard {
			s.evict()
		}
		// Clone: the caller's string may share a larger buffer we must not pin.
		m[strings.Clone(query)] = r
	}
	s.mu.Unlock()
	return r
}

// len returns the number of results the shard holds; s.mu must be held.
func (s *shard) len() int {
	n := 0
	for _, m := range s.m {
		n += len(m)
	}
	return n
}

// evict deletes an arbitrary entry of the shard; s.mu must be held. Map
// order is random, so the first key met is one at random.
func (s *shard) evict() {
	for _, m := range s.m {
		for k := range m {
			delete(m, k)
			return
		}
	}
}

// Len returns the number of cached results.
func (c *Classifier) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += s.len()
		s.mu.RUnlock()
	}
	return n
}
