package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds and results of price changes, results of quotes (bounded label values).
const (
	changeModel    = "model"
	changeInstance = "instance"
	changeApplied  = "applied"
	changeReplayed = "replayed" // the idempotency key was seen before: nothing changed
	quoteOK        = "ok"
	quoteRefused   = "refused" // unknown model, bad usage, a time too far ahead
)

// metrics are pricing's domain metrics (tally_pricing_*).
type metrics struct {
	changes *prometheus.CounterVec
	quotes  *prometheus.CounterVec
	version prometheus.GaugeFunc
}

func newMetrics(version func() float64) *metrics {
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_pricing_price_changes_applied_total",
			Help: "Price changes by kind (model, instance) and result (applied, replayed).",
		}, []string{"kind", "result"}),
		quotes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_pricing_quotes_total",
			Help: "Quote requests by result (ok, refused).",
		}, []string{"result"}),
		version: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tally_pricing_catalog_version",
			Help: "The price catalog version this replica serves.",
		}, version),
	}
	for _, k := range []string{changeModel, changeInstance} {
		for _, r := range []string{changeApplied, changeReplayed} {
			m.changes.WithLabelValues(k, r)
		}
	}
	for _, r := range []string{quoteOK, quoteRefused} {
		m.quotes.WithLabelValues(r)
	}
	return m
}

// RegisterMetrics registers pricing's metrics on reg (the server's registry).
func (a *App) RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{a.metrics.changes, a.metrics.quotes, a.metrics.version} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering pricing metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) change(kind string, replayed bool) {
	result := changeApplied
	if replayed {
		result = changeReplayed
	}
	m.changes.WithLabelValues(kind, result).Inc()
}

func (m *metrics) quote(err error) {
	result := quoteOK
	if err != nil {
		result = quoteRefused
	}
	m.quotes.WithLabelValues(result).Inc()
}
