package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flypg/flypg"
)

const namespace = "flypg"

// collector turns one flypg.Stats snapshot per scrape into constant
// metrics. It holds no counters of its own: the node counts, the scrape
// reads, so a statement pays nothing for being observed.
type collector struct {
	stats         func() flypg.Stats
	primaryRegion string
	descs         []*prometheus.Desc // every desc, for Describe

	node     []scalar[flypg.Stats]
	nodeInfo *prometheus.Desc

	db               []scalar[flypg.DatabaseStats]
	dbInfo           *prometheus.Desc
	dbRole           *prometheus.Desc
	dbPrimaryMembers *prometheus.Desc
	trackerMode      *prometheus.Desc
	poolClosed       *prometheus.Desc

	members       *prometheus.Desc
	linkRTT       *prometheus.Desc
	primaryMember *prometheus.Desc
}

// scalar is a metric read straight off one field of S.
type scalar[S any] struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func(*S) float64
}

var _ prometheus.Collector = (*collector)(nil)

// NewCollector returns a Prometheus collector of n's metrics (see the
// package documentation for the list). It reads n.Stats() once per scrape,
// so it starts no goroutine and adds nothing to a statement's cost; it
// stays usable after n is closed (the counters then stop moving). Register
// one per node:
//
//	reg.MustRegister(metrics.NewCollector(node))
//
// Every metric carries the constant labels node (n.Name()) and region
// (n.Region()) unless WithoutNodeLabels is given. It panics if n is nil.
func NewCollector(n *flypg.Node, opts ...Option) prometheus.Collector {
	if n == nil {
		panic("metrics: NewCollector: nil *flypg.Node")
	}
	return newCollector(n.Stats, n.Name(), n.Region(), n.PrimaryRegion(), opts...)
}

func newCollector(stats func() flypg.Stats, node, region, primaryRegion string, opts ...Option) *collector {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	constLabels := prometheus.Labels{}
	if o.nodeLabels {
		constLabels["node"] = validUTF8(node)
		constLabels["region"] = validUTF8(region)
	}
	for k, v := range o.constLabels {
		constLabels[k] = validUTF8(v)
	}
	c := &collector{stats: stats, primaryRegion: validUTF8(primaryRegion)}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		desc := prometheus.NewDesc(namespace+"_"+name, help, labels, constLabels)
		c.descs = append(c.descs, desc)
		return desc
	}
	c.defineNode(d)
	c.defineDatabase(d)
	c.defineCluster(d)
	return c
}

type descFunc func(name, help string, labels ...string) *prometheus.Desc

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	c.collectNode(ch, &s)
	names := c.collectDatabases(ch, &s)
	c.collectCluster(ch, &s, names)
}

// emit sends one sample. The label values are made valid UTF-8 first, so a
// strange database or node name can never fail the scrape; anything else
// NewConstMetric could refuse is a bug in this package, reported through
// the scrape rather than by panicking the app.
func emit(ch chan<- prometheus.Metric, desc *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) {
	for i, l := range labels {
		labels[i] = validUTF8(l)
	}
	m, err := prometheus.NewConstMetric(desc, typ, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	ch <- m
}

func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
