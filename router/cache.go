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
	// One set of shards per Options variant (see variant), so that a hit
	// is a lookup by string alone, on the runtime's fast path for strings.
	shards [numVariants][numShards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[string]Result
	_  [32]byte // RWMutex (24) + map (8) + 32: one 64-byte cache line per shard
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
// results (rounded up to a multiple of 16) for each Options variant in use
// (in practice one: a driver's connections share their
// standard_conforming_strings). A capacity ≤ 0 disables the cache. When a
// shard is full, an arbitrary entry of it is evicted: random eviction
// keeps the hot texts of an ORM workload with no bookkeeping on hits.
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
		return analyze(query, o)
	}
	s := &c.shards[variant(o)][maphash.String(c.seed, query)&(numShards-1)]
	s.mu.RLock()
	r, ok := s.m[query]
	s.mu.RUnlock()
	if ok {
		return r
	}
	return s.add(query, o, c.perShard)
}

// add classifies query and caches the result in the shard, which holds at
// most perShard results. It is apart from AnalyzeOpts to keep the
// analyzer's state off the stack frame of a cache hit.
func (s *shard) add(query string, o Options, perShard int) Result {
	r := analyze(query, o)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]Result, min(perShard, 64)) // grows as needed
	}
	if _, dup := s.m[query]; !dup {
		if len(s.m) >= perShard {
			for k := range s.m { // map order is random: evict one at random
				delete(s.m, k)
				break
			}
		}
		// Clone: the caller's string may share a larger buffer we must not pin.
		s.m[strings.Clone(query)] = r
	}
	return r
}

// Len returns the number of cached results.
func (c *Classifier) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for v := range c.shards {
		for i := range c.shards[v] {
			s := &c.shards[v][i]
			s.mu.RLock()
			n += len(s.m)
			s.mu.RUnlock()
		}
	}
	return n
}
