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

// Classifier is Analyze with a bounded cache keyed by the query text. It
// is safe for concurrent use. A nil *Classifier classifies without
// caching.
type Classifier struct {
	seed     maphash.Seed
	perShard int
	shards   [numShards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[string]Result
	_  [32]byte // RWMutex (24) + map (8) + 32: one 64-byte cache line per shard
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
func (c *Classifier) Analyze(query string) Result {
	if c == nil || c.perShard == 0 || len(query) > MaxCachedLen {
		return Analyze(query)
	}
	s := &c.shards[maphash.String(c.seed, query)&(numShards-1)]
	s.mu.RLock()
	r, ok := s.m[query]
	s.mu.RUnlock()
	if ok {
		return r
	}
	r = Analyze(query)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]Result, min(c.perShard, 64)) // grows as needed
	}
	if _, dup := s.m[query]; !dup {
		if len(s.m) >= c.perShard {
			for k := range s.m { // map order is random: evict one at random
				delete(s.m, k)
				break
			}
		}
		// Clone: the caller's string may share a larger buffer we must not pin.
		s.m[strings.Clone(query)] = r
	}
	s.mu.Unlock()
	return r
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
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
