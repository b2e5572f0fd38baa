package metrics

import (
	"maps"

	"github.com/prometheus/client_golang/prometheus"
)

// Option configures NewCollector.
type Option func(*options)

type options struct {
	nodeLabels  bool
	constLabels prometheus.Labels
}

func defaultOptions() options { return options{nodeLabels: true} }

// WithConstLabels adds constant labels to every metric (an "app" label, for
// instance). A label named node or region replaces the collector's own. A
// name that is not a valid label name, or that a metric also uses as a
// variable label (database, role, mode, reason, system_identifier, peer,
// peer_region, primary_region), makes registering the collector fail.
func WithConstLabels(l prometheus.Labels) Option {
	return func(o *options) {
		if o.constLabels == nil {
			o.constLabels = prometheus.Labels{}
		}
		maps.Copy(o.constLabels, l)
	}
}

// WithoutNodeLabels leaves out the constant labels node and region, for a
// scraper that labels each target with its region itself (with
// honor_labels false, Prometheus would otherwise keep both, renaming the
// collector's to exported_region).
func WithoutNodeLabels() Option {
	return func(o *options) { o.nodeLabels = false }
}
