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

// Metrics are the notifications' domain metrics, for SendConfig.Sent and FollowerConfig.Applied.
type Metrics struct {
	EmailAttempts *prometheus.CounterVec
	Applied       *Applied
}

// Applied exports how far this replica has applied the ledger's event stream, per ledger shard
// (sequences and clocks are per shard): tally_notifications_ledger_cursor, the sequence of the
// last event applied from the shard, and tally_notifications_ledger_event_timestamp_seconds, when
// that event occurred. The consumer lag alert compares the latter with the ledger's
// tally_ledger_outbox_head_timestamp_seconds of the same shard: lag in time, since sequences are
// not dense. A shard gets its series at the first event applied from it.
type Applied struct {
	Cursor     *prometheus.GaugeVec
	OccurredAt *prometheus.GaugeVec
}

// observe records a batch just applied: each shard's last event in it.
func (a *Applied) observe(batch []notify.LedgerEvent) {
	if a == nil {
		return
	}
	last := map[string]notify.LedgerEvent{}
	for _, e := range batch {
		last[e.Shard] = e
	}
	for shard, e := range last {
		if shard == "" {
			shard = "main" // a ledger that names no shard has one, named so
		}
		a.Cursor.WithLabelValues(shard).Set(float64(e.Seq))
		if !e.OccurredAt.IsZero() {
			a.OccurredAt.WithLabelValues(shard).Set(float64(e.OccurredAt.UnixMicro()) / 1e6)
		}
	}
}

// NewMetrics builds the notifications' metrics with every kind and result at 0 and registers
// them on reg (the server's registry).
func NewMetrics(reg prometheus.Registerer) (Metrics, error) {
	m := Metrics{
		EmailAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_notifications_email_attempts_total", Help: "Email delivery attempts by kind and result (sent, retry, failed).",
		}, []string{"kind", "result"}),
		Applied: &Applied{
			Cursor: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "tally_notifications_ledger_cursor", Help: "Sequence of the last ledger event applied by this replica, by ledger shard (sequences are per shard, with gaps).",
			}, []string{"shard"}),
			OccurredAt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "tally_notifications_ledger_event_timestamp_seconds", Help: "When the last ledger event applied by this replica occurred (Unix seconds), by ledger shard.",
			}, []string{"shard"}),
		},
	}
	for _, k := range notify.EmailKinds {
		for _, r := range []string{emailSent, emailRetry, emailFailed} {
			m.EmailAttempts.WithLabelValues(string(k), r)
		}
	}
	for _, c := range []prometheus.Collector{m.EmailAttempts, m.Applied.Cursor, m.Applied.OccurredAt} {
		if err := reg.Register(c); err != nil {
			return Metrics{}, fmt.Errorf("registering notifications metrics: %w", err)
		}
	}
	return m, nil
}
