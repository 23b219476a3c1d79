// Package httpmetrics measures the gateway's HTTP traffic the RED way: requests by route, method
// and status, their duration, and the requests in flight. The route is the pattern the request
// matched (the router names it with SetRoute), never the raw path: the label set stays bounded
// however many organizations, ids or junk paths the callers send.
package httpmetrics

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unmatched is the route of a request no route matched.
const Unmatched = "unmatched"

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

// routeKey carries the *route of a request being measured.
type routeKey struct{}

type route struct{ name atomic.Pointer[string] }

// SetRoute names the route of the request whose context is ctx (a request passed through
// Handler); the last call wins, so an inner router refines what an outer one said. Without
// Handler it does nothing.
func SetRoute(ctx context.Context, name string) {
	if r, ok := ctx.Value(routeKey{}).(*route); ok {
		r.name.Store(&name)
	}
}

// Handler measures every request next serves.
func (m *Metrics) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		rt := &route{}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			name := Unmatched
			if n := rt.name.Load(); n != nil {
				name = *n
			}
			method := r.Method
			if !methods[method] {
				method = "other"
			}
			code := rec.status
			if code == 0 {
				code = http.StatusOK // nothing written: net/http answers 200
			}
			m.requests.WithLabelValues(name, method, strconv.Itoa(code)).Inc()
			m.duration.WithLabelValues(name, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, rt)))
	})
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= http.StatusOK { // 1xx are interim answers
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the underlying writer (flushes, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush passes flushes on (grpc-gateway's streaming responses).
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
