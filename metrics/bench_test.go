package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/metrics"
)

// BenchmarkGather measures what a scrape costs the app: Registry.Gather of
// the collector alone. The baseline is the Go runtime collector that nearly
// every app already registers; compare ns/op and allocs/op as ratios
// against it. "large" is a node with 3 databases in a 12-member cluster;
// "dev-node" is a real node's Stats (dev mode: one database, no cluster).
func BenchmarkGather(b *testing.B) {
	large := fullStats()
	for i := 1; i < 3; i++ {
		d := large.Databases[0]
		d.Name = fmt.Sprintf("app%d", i)
		large.Databases = append(large.Databases, d)
	}
	for i := len(large.Members); i < 12; i++ {
		large.Members = append(large.Members, flypg.MemberStats{Name: fmt.Sprintf("m-%d", i), Region: "ams",
			RTT: time.Duration(i) * time.Millisecond, Primaries: []string{}})
	}
	dev, err := flypg.Start(context.Background(), flypg.Config{DSN: "postgres://app@localhost:5432/app", NodeName: "bench"})
	require.NoError(b, err)
	defer dev.Close()

	for _, c := range []struct {
		name string
		c    prometheus.Collector
	}{
		{"baseline=go-collector", collectors.NewGoCollector()},
		{"flypg/dev-node", metrics.NewCollector(dev)},
		{"flypg/large", metrics.NewStatsCollector(func() flypg.Stats { return large }, "lax-1", "lax", "syd")},
	} {
		b.Run(c.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			require.NoError(b, reg.Register(c.c))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
