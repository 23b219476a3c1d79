package payment

// Signal is what Stripe (or the local checkout, or reconciliation) tells about a payment.
type Signal string

// Signals, in the vocabulary of the payment rather than of Stripe's event types.
const (
	// SignalPaid: the money was received (checkout.session.completed with payment_status paid,
	// checkout.session.async_payment_succeeded, or a paid session found by reconciliation).
	SignalPaid Signal = "paid"
	// SignalAwaitingPayment: Checkout completed but an asynchronous payment is still processing.
	SignalAwaitingPayment Signal = "awaiting_payment"
	// SignalFailed: the asynchronous payment failed.
	SignalFailed Signal = "failed"
	// SignalExpired: the Checkout Session expired.
	SignalExpired Signal = "expired"
	// SignalRefunded: the whole charge was refunded outside tally (e.g. the Stripe dashboard).
	SignalRefunded Signal = "refunded"
	// SignalPartiallyRefunded: part of the charge was refunded outside tally.
	SignalPartiallyRefunded Signal = "partially_refunded"
	// SignalDisputed: the cardholder opened a dispute.
	SignalDisputed Signal = "disputed"
)

// Decision is what the state machine does with a signal.
type Decision struct {
	// Credit grants the payment's credits through the ledger and issues its invoice.
	Credit bool
	// Status is the payment's status after the signal.
	Status Status
	// AwaitingAsync is the payment's awaiting-async flag after the signal.
	AwaitingAsync bool
	// Review opens an ops review item of this kind when not empty.
	Review string
}

// Changed reports whether the decision changes p.
func (d Decision) Changed(p Payment) bool {
	return d.Credit || d.Status != p.Status || d.AwaitingAsync != p.AwaitingAsync || d.Review != ""
}

// Decide applies signal s to p. It tolerates any order of events: credits are granted once, by the
// first paid signal (money received wins over an earlier asynchronous failure). An expired payment
// never grants credits: Stripe cannot complete a Checkout Session once it expired, so money
// reported for one afterwards is an anomaly that opens a review item instead; a payment known to be
// paid (paid on the test-mode page, or due for fulfilment) never expires. Signals that would take
// back granted credits (late failures, disputes, refunds made outside tally) never change the
// ledger and open a review item instead.
func Decide(p Payment, s Signal) Decision {
	d := Decision{Status: p.Status, AwaitingAsync: p.AwaitingAsync}
	switch s {
	case SignalPaid:
		if p.Credited() {
			return d // e.g. completed after async_payment_succeeded, or a duplicate
		}
		if p.Status == StatusExpired {
			d.Review = ReviewPaidAfterExpiry
			return d
		}
		d.Credit, d.AwaitingAsync = true, false
		switch p.Status {
		case StatusPending, StatusFailed:
			d.Status = StatusSucceeded
		}
	case SignalAwaitingPayment:
		if p.Status == StatusPending && !p.Credited() {
			d.AwaitingAsync = true
		}
	case SignalFailed:
		switch {
		case p.Credited():
			d.Review = ReviewLateFailure
		case p.Status == StatusPending:
			d.Status, d.AwaitingAsync = StatusFailed, false
		}
	case SignalExpired:
		if p.Status == StatusPending && !p.Credited() && p.LocalPaidAt.IsZero() && p.FulfilAfter.IsZero() {
			d.Status, d.AwaitingAsync = StatusExpired, false
		}
	case SignalRefunded:
		d.Status, d.Review = StatusRefunded, ReviewExternalRefund
	case SignalPartiallyRefunded:
		d.Review = ReviewExternalRefund
	case SignalDisputed:
		d.Status, d.Review = StatusDisputed, ReviewDispute
	}
	if p.Status == StatusExpired {
		// Only a review item can follow an expiry: the payment stays expired, never credited.
		d.Status = StatusExpired
	}
	return d
}
