package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// metrics are the client's Prometheus metrics, registered on Config.Registerer only (nothing
// global). Without a registerer they are still counted, unexported.
type metrics struct {
	calls      *prometheus.CounterVec   // method, code
	duration   *prometheus.HistogramVec // method
	retries    *prometheus.CounterVec   // method
	batchSize  prometheus.Histogram
	inFlight   prometheus.Gauge
	reconnects prometheus.Counter
	resent     prometheus.Counter
	lease      *prometheus.CounterVec // event: debit, exhausted, reserve, capture, capture_failed, late_debit
	// The children of the hot path (a committed Debit), looked up once.
	debitOK       prometheus.Counter
	debitDuration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tally_client_calls_total",
			Help: "Ledger calls of the SDK by method and final gRPC code (a streamed debit counts as Debit)."}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tally_client_call_duration_seconds",
			Help:    "Time from a call to its final answer, retries included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"method"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tally_client_retries_total",
			Help: "Attempts sent again after Unavailable or the client's own deadline."}, []string{"method"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tally_client_stream_batch_size",
			Help: "Debits per DebitStream message.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tally_client_stream_in_flight",
			Help: "Streamed debits sent and not yet acknowledged."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "tally_client_stream_reconnects_total",
			Help: "DebitStreams opened again after one broke or stalled."}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{Name: "tally_client_stream_resent_total",
			Help: "Unacknowledged debits resent, with their keys, on a new stream."}),
		lease: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tally_client_lease_events_total",
			Help: "Credit lease events: local debits, refusals for lack of a hold, reserves, captures, failures."}, []string{"event"}),
	}
	m.debitOK = m.calls.WithLabelValues("Debit", codes.OK.String())
	m.debitDuration = m.duration.WithLabelValues("Debit")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration, m.retries, m.batchSize, m.inFlight, m.reconnects, m.resent, m.lease} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				return nil, fmt.Errorf("client: metrics already registered (one Registerer per Client): %w", err)
			}
			return nil, fmt.Errorf("client: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(method string, code codes.Code, start time.Time) {
	if method == "Debit" && code == codes.OK {
		m.debitOK.Inc()
		m.debitDuration.Observe(time.Since(start).Seconds())
		return
	}
	m.calls.WithLabelValues(method, code.String()).Inc()
	m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
}
