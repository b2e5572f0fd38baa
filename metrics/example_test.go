package metrics_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/metrics"
)

// Serve a node's metrics on /metrics, beside the Go runtime's. (The node
// here is in dev mode, configured in code so that the example runs as is;
// an app would use flypg.ConfigFromEnv. Starting a node does not connect to
// its database.)
func ExampleNewCollector() {
	node, err := flypg.Start(context.Background(), flypg.Config{
		DSN:      "postgres://app@localhost:5432/app",
		NodeName: "web-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewCollector(node),
		collectors.NewGoCollector(),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	// What a scrape of it shows, in part:
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "flypg_cluster_members") || strings.HasPrefix(line, "flypg_forwarded_statements_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// flypg_cluster_members{node="web-1",region="local"} 0
	// flypg_forwarded_statements_total{node="web-1",region="local"} 0
}

// Leave out the node and region labels when the scraper adds its own (as
// Fly.io's does), and add an app label to every metric.
func ExampleWithoutNodeLabels() {
	cfg, err := flypg.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	node, err := flypg.Start(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	prometheus.MustRegister(metrics.NewCollector(node,
		metrics.WithoutNodeLabels(),
		metrics.WithConstLabels(prometheus.Labels{"app": cfg.App}),
	))
	http.Handle("/metrics", promhttp.Handler())
	log.Fatal(http.ListenAndServe(":9091", nil))
}
