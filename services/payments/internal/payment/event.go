package payment

import "time"

// Stripe event types handled by the service.
const (
	EventCheckoutCompleted      = "checkout.session.completed"
	EventCheckoutAsyncSucceeded = "checkout.session.async_payment_succeeded"
	EventCheckoutAsyncFailed    = "checkout.session.async_payment_failed"
	EventCheckoutExpired        = "checkout.session.expired"
	EventChargeRefunded         = "charge.refunded"
	EventDisputeCreated         = "charge.dispute.created"
	// EventIntentSucceeded is an off-session auto-recharge charge that succeeded.
	EventIntentSucceeded = "payment_intent.succeeded"
	// EventIntentFailed is an off-session auto-recharge charge that failed after it was accepted.
	EventIntentFailed = "payment_intent.payment_failed"
)

// Metadata keys set on Checkout Sessions and their payment intents.
const (
	MetaPaymentID = "tally_payment_id"
	MetaOrgID     = "tally_org_id"
	MetaMemberID  = "tally_member_id"
)

// Event is a verified Stripe event reduced to what the payments service needs.
type Event struct {
	ID      string
	Type    string
	Created time.Time
	// Session is set for checkout.session.* events.
	Session *Session
	// Charge is set for charge.refunded.
	Charge *Charge
	// Dispute is set for charge.dispute.created.
	Dispute *Dispute
	// Intent is set for payment_intent.succeeded and payment_intent.payment_failed.
	Intent *Intent
}

// Intent is a Stripe PaymentIntent; auto-recharge's carry the payment id in their metadata.
type Intent struct {
	ID             string
	Status         string
	AmountReceived int64
	Currency       string
	PaymentID      string
	OrgID          string
	// FailureCode and FailureMessage are the last_payment_error of a failed one.
	FailureCode    string
	FailureMessage string
}

// Session is the state of a Checkout Session as Stripe (or the local checkout) reports it.
type Session struct {
	ID              string
	Status          string // open, complete, expired
	PaymentStatus   string // paid, unpaid, no_payment_required
	AmountTotal     int64  // minor units; 0 when unknown
	Currency        string // upper case; "" when unknown
	PaymentIntentID string
	PaymentMethod   string
	// PaymentID and OrgID come from the session's metadata.
	PaymentID string
	OrgID     string
	Created   time.Time
	// Mode is "payment" for a top-up, "setup" for a session that saves a card; SetupIntentID is
	// the latter's SetupIntent.
	Mode          string
	SetupIntentID string
}

// Paid reports whether the session's money was received.
func (s Session) Paid() bool { return s.PaymentStatus == "paid" }

// Signal is what the session's state says of its payment: paid, expired, or nothing yet (ok
// false) while it is open.
func (s Session) Signal() (sig Signal, ok bool) {
	switch {
	case s.Paid():
		return SignalPaid, true
	case s.Status == "expired":
		return SignalExpired, true
	}
	return "", false
}

// Charge is the state of a Stripe charge.
type Charge struct {
	ID              string
	PaymentIntentID string
	Amount          int64
	AmountRefunded  int64
	Currency        string
	Refunded        bool
}

// Dispute is a Stripe dispute.
type Dispute struct {
	ID              string
	ChargeID        string
	PaymentIntentID string
	Amount          int64
	Currency        string
	Reason          string
}
