package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Results of an email delivery attempt (bounded label values).
const (
	emailSent   = "sent"
	emailRetry  = "retry"  // failed, tried again later
	emailFailed = "failed" // failed for good
)

// Metrics are the notifications' domain metrics, for SendConfig.Sent and FollowerConfig.Cursor.
type Metrics struct {
	EmailAttempts *prometheus.CounterVec
	LedgerCursor  prometheus.Gauge
}

// NewMetrics builds the notifications' metrics with every kind and result at 0 and registers
// them on reg (the server's registry).
func NewMetrics(reg prometheus.Registerer) (Metrics, error) {
	m := Metrics{
		EmailAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_notifications_email_attempts_total", Help: "Email delivery attempts by kind and result (sent, retry, failed).",
		}, []string{"kind", "result"}),
		LedgerCursor: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_notifications_ledger_cursor", Help: "Sequence of the last ledger event applied by this replica.",
		}),
	}
	for _, k := range notify.EmailKinds {
		for _, r := range []string{emailSent, emailRetry, emailFailed} {
			m.EmailAttempts.WithLabelValues(string(k), r)
		}
	}
	for _, c := range []prometheus.Collector{m.EmailAttempts, m.LedgerCursor} {
		if err := reg.Register(c); err != nil {
			return Metrics{}, fmt.Errorf("registering notifications metrics: %w", err)
		}
	}
	return m, nil
}
