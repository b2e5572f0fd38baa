package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flypg/flypg"
)

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// defineNode declares the node's routing and outcome counters.
func (c *collector) defineNode(d descFunc) {
	count := func(name, help string, val func(*flypg.Stats) int64) {
		c.node = append(c.node, scalar[flypg.Stats]{d(name, help), counter, func(s *flypg.Stats) float64 { return float64(val(s)) }})
	}
	count("forwarded_statements_total",
		"Statements sent to a primary-region node (each statement of a remote transaction counts).",
		func(s *flypg.Stats) int64 { return s.Forwarded })
	count("local_statements_total",
		"Statements run on the local database.",
		func(s *flypg.Stats) int64 { return s.Local })
	count("retried_reads_total",
		"Reads the local replica refused as writes (SQLSTATE 25006) that were then forwarded.",
		func(s *flypg.Stats) int64 { return s.Retried })
	count("primary_reads_total",
		"Reads sent to the primary (OnPrimary, AfterLSN not met locally, local database unreachable).",
		func(s *flypg.Stats) int64 { return s.PrimaryReads })
	count("awaits_total",
		"Committed writes that waited for the local replica to replay them.",
		func(s *flypg.Stats) int64 { return s.Awaits })
	count("awaits_skipped_total",
		"Committed writes that did not wait for replay (NoAwait, or a writable local database).",
		func(s *flypg.Stats) int64 { return s.Skipped })
	count("await_timeouts_total",
		"Waits for replay that failed (an AwaitError, or success under AwaitTimeoutSucceed).",
		func(s *flypg.Stats) int64 { return s.AwaitTimeouts })
	count("committed_unknown_lsn_total",
		"Writes that committed but whose commit position could not be read (CommittedError).",
		func(s *flypg.Stats) int64 { return s.Committed })
	count("unknown_outcomes_total",
		"Writes whose outcome is unknown (ErrUnknownOutcome): sent, and the answer lost.",
		func(s *flypg.Stats) int64 { return s.UnknownOutcomes })

	seconds := func(name, help string, val func(*flypg.Stats) float64) {
		c.node = append(c.node, scalar[flypg.Stats]{d(name, help), gauge, val})
	}
	seconds("await_duration_p50_seconds",
		"Median duration of the waits for replay since the node started (overstated by up to 25%).",
		func(s *flypg.Stats) float64 { return s.AwaitP50.Seconds() })
	seconds("await_duration_p99_seconds",
		"99th percentile duration of the waits for replay since the node started (overstated by up to 25%).",
		func(s *flypg.Stats) float64 { return s.AwaitP99.Seconds() })
	c.node = append(c.node, scalar[flypg.Stats]{
		d("remote_transactions_serving", "Remote transactions this node is serving now, each holding a primary connection."),
		gauge, func(s *flypg.Stats) float64 { return float64(s.RemoteTx) },
	})
	c.nodeInfo = d("node_info", "Always 1; primary_region is the node's primary region (empty in dev mode).", "primary_region")
}

func (c *collector) collectNode(ch chan<- prometheus.Metric, s *flypg.Stats) {
	for _, m := range c.node {
		emit(ch, m.desc, m.typ, m.val(s))
	}
	emit(ch, c.nodeInfo, gauge, 1, c.primaryRegion)
}
