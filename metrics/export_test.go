package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flypg/flypg"
)

// NewStatsCollector is NewCollector over any source of Stats, so tests can
// feed it states a live cluster rarely shows (unreachable databases, odd
// names, failovers).
func NewStatsCollector(stats func() flypg.Stats, node, region, primaryRegion string, opts ...Option) prometheus.Collector {
	return newCollector(stats, node, region, primaryRegion, opts...)
}
