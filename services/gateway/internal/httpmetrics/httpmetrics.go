// Package httpmetrics measures the gateway's HTTP traffic the RED way: requests by route, method
// and status, their duration, and the requests in flight. It is the accesslog.Observer of the
// gateway: the route is the pattern the access-log line names, never the raw path, so the label
// set stays bounded however many organizations, ids or junk paths the callers send.
package httpmetrics

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// methods are the HTTP methods with their own label value; the rest are "other".
var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// Metrics are the gateway's HTTP metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// New builds the metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_http_requests_total",
			Help: "HTTP requests served by the gateway, by route (the matched pattern), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tally_http_request_duration_seconds",
			Help:    "Duration of the gateway's HTTP requests, by route and method, until the handler returned.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_http_requests_in_flight",
			Help: "HTTP requests the gateway is serving now.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the gateway's HTTP metrics: %w", err)
		}
	}
	return m, nil
}

// Begin counts a request in flight (accesslog.Observer).
func (m *Metrics) Begin() { m.inFlight.Inc() }

// End counts a finished request under its route pattern (accesslog.Observer).
func (m *Metrics) End(route, method string, status int, elapsed time.Duration) {
	m.inFlight.Dec()
	if !methods[method] {
		method = "other"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}
