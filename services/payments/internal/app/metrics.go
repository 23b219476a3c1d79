package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Outcomes of a webhook delivery beyond those HandleEvent returns (bounded label values).
const (
	outcomeRejected = "rejected" // bad signature or payload: nothing changed
	outcomeFailed   = "failed"   // an error: Stripe retries the delivery
)

// otherType labels the events of a type tally does not handle, and rejected deliveries.
const otherType = "other"

// webhookTypes are the event types with their own label value.
var webhookTypes = []string{payment.EventCheckoutCompleted, payment.EventCheckoutAsyncSucceeded, payment.EventCheckoutAsyncFailed,
	payment.EventCheckoutExpired, payment.EventChargeRefunded, payment.EventDisputeCreated, payment.EventIntentSucceeded, payment.EventIntentFailed}

// Results of checkout creation.
const (
	checkoutCreated = "created"
	checkoutRefused = "refused" // invalid amount, currency, caller
	checkoutFailed  = "failed"  // the ledger, the processor or the database
)

// Kinds of reconciliation fixes.
const (
	fixFulfilled = "fulfilled"
	fixExpired   = "expired"
)

// reviewSampleTimeout bounds the count of open review items.
const reviewSampleTimeout = 5 * time.Second

// metrics are payments' domain metrics (tally_payments_*).
type metrics struct {
	webhooks    *prometheus.CounterVec
	checkouts   *prometheus.CounterVec
	fixes       *prometheus.CounterVec
	recharges   *prometheus.CounterVec
	reviewsOpen prometheus.Gauge
}

// newMetrics builds payments' metrics with every label combination at 0 and registers them on
// reg (nil registers nothing).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_payments_webhook_events_total",
			Help: "Stripe webhook deliveries by event type (other: unhandled types and rejected deliveries) and outcome (processed, duplicate, ignored, rejected, failed).",
		}, []string{"type", "outcome"}),
		checkouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_payments_checkouts_total",
			Help: "Checkout session requests by result: created, refused (invalid request), failed (a dependency).",
		}, []string{"result"}),
		fixes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_payments_reconcile_fixes_total",
			Help: "Sessions reconciliation applied because their webhook never arrived: fulfilled (paid, credited now), expired.",
		}, []string{"kind"}),
		recharges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_payments_recharges_total",
			Help: "Auto-recharges by step: claimed (one per crossing), then succeeded, declined or authentication_required as recorded.",
		}, []string{"result"}),
		reviewsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_payments_review_items_open",
			Help: "Review items not resolved yet (sampled).",
		}),
	}
	for _, t := range append(webhookTypes, otherType) {
		for _, o := range []string{OutcomeProcessed, OutcomeDuplicate, OutcomeIgnored, outcomeRejected, outcomeFailed} {
			m.webhooks.WithLabelValues(t, o)
		}
	}
	for _, r := range []string{checkoutCreated, checkoutRefused, checkoutFailed} {
		m.checkouts.WithLabelValues(r)
	}
	for _, k := range []string{fixFulfilled, fixExpired} {
		m.fixes.WithLabelValues(k)
	}
	for _, r := range []string{"claimed", string(payment.ChargeSucceeded), string(payment.ChargeDeclined), string(payment.ChargeAuthenticationRequired), string(payment.ChargePending)} {
		m.recharges.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.webhooks, m.checkouts, m.fixes, m.recharges, m.reviewsOpen} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering payments metrics: %w", err)
		}
	}
	return m, nil
}

// webhook counts one delivery of an event of type typ.
func (m *metrics) webhook(typ, outcome string) {
	label := otherType
	for _, t := range webhookTypes {
		if t == typ {
			label = t
		}
	}
	if outcome == outcomeRejected {
		label = otherType // the type of an unverified payload is the sender's word
	}
	m.webhooks.WithLabelValues(label, outcome).Inc()
}

// recharge counts one auto-recharge step.
func (m *metrics) recharge(result string) { m.recharges.WithLabelValues(result).Inc() }

// checkout counts one CreateCheckout with its error.
func (m *metrics) checkout(err error) {
	switch {
	case err == nil:
		m.checkouts.WithLabelValues(checkoutCreated).Inc()
	case errors.Is(err, payment.ErrInvalid), errors.Is(err, payment.ErrFailedPrecondition):
		m.checkouts.WithLabelValues(checkoutRefused).Inc()
	default:
		m.checkouts.WithLabelValues(checkoutFailed).Inc()
	}
}

// RunReviewSampler sets tally_payments_review_items_open now and then every interval until ctx
// is done.
func (a *App) RunReviewSampler(ctx context.Context, interval time.Duration) error {
	return loop.Every(ctx, "review sampler", interval, loop.Now, loop.Passes(func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(ctx, reviewSampleTimeout)
		n, err := a.store.OpenReviewItems(sctx)
		cancel()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			a.logger.DebugContext(ctx, "counting open review items failed", "err", err)
		default:
			a.metrics.reviewsOpen.Set(float64(n))
		}
	}))
}
