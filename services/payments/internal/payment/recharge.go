package payment

import (
	"context"
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// SavedMethod is the card an organization saved for auto-recharge.
type SavedMethod struct {
	OrgID           string
	Mode            Mode
	CustomerID      string
	PaymentMethodID string
	Brand           string
	Last4           string
	ExpMonth        int
	ExpYear         int
	SetupSessionID  string
	SavedBy         Member
	SavedAt         time.Time
}

// SetupSession is a Checkout Session in setup mode (or the test-mode page) opened to save a card.
type SetupSession struct {
	ID     string
	OrgID  string
	Mode   Mode
	Member Member
	URL    string
	// LocalMethod is the test card chosen on the test-mode page ("" until then).
	LocalMethod string
	CompletedAt time.Time
	ExpiresAt   time.Time
	CreatedAt   time.Time
	// ExpiredAt is when the session was found abandoned past its expiry (zero while open).
	ExpiredAt time.Time
}

// SetupRequest asks a processor for a setup session.
type SetupRequest struct {
	SessionID string // the local page's id; the processor chooses Stripe's
	OrgID     string
	Member    Member
	ExpiresAt time.Time
	// CustomerID is the organization's processor customer ("": none yet, the processor creates
	// one and answers it in CreatedSession.CustomerID).
	CustomerID string
}

// ChargeRequest asks a processor to charge a saved card off-session, with the idempotency key
// "recharge:<payment id>": a resumed charge reaches the same PaymentIntent.
type ChargeRequest struct {
	PaymentID   string
	OrgID       string
	Method      SavedMethod
	AmountMinor int64
	Currency    string
}

// ChargeStatus is what a processor answered to an off-session charge.
type ChargeStatus string

// Charge statuses.
const (
	ChargeSucceeded ChargeStatus = "succeeded"
	// ChargeDeclined is a card the issuer declined.
	ChargeDeclined ChargeStatus = "declined"
	// ChargeAuthenticationRequired is a payment the bank wants the cardholder to authenticate,
	// which cannot happen off-session.
	ChargeAuthenticationRequired ChargeStatus = "authentication_required"
	// ChargePending is a charge the processor accepted without settling it (processing): its
	// webhook (payment_intent.succeeded or payment_intent.payment_failed) ends the recharge.
	ChargePending ChargeStatus = "pending"
)

// ChargeResult is the outcome of an off-session charge.
type ChargeResult struct {
	PaymentIntentID string
	Status          ChargeStatus
	// Message is the processor's explanation of a failure.
	Message string
}

// Recharger is a processor that saves cards and charges them off-session.
type Recharger interface {
	CreateSetup(ctx context.Context, req SetupRequest) (CreatedSession, error)
	// SetupMethod returns the card a completed setup session saved; done is false while the
	// session is not complete.
	// setupIntentID is the SetupIntent the completed session reported.
	SetupMethod(ctx context.Context, s SetupSession, setupIntentID string) (m SavedMethod, done bool, err error)
	// ChargeSaved charges the saved card; a decline or a required authentication is a Charge with
	// that status, not an error. Errors wrap ErrUnavailable (worth retrying with the same key) or
	// ErrRejected.
	ChargeSaved(ctx context.Context, req ChargeRequest) (ChargeResult, error)
	// ChargeStatus is where the charge of req, PaymentIntent intentID, stands now: succeeded,
	// failed (declined, canceled, authentication required) or still pending. Errors are those of
	// ChargeSaved.
	ChargeStatus(ctx context.Context, req ChargeRequest, intentID string) (ChargeResult, error)
}

// Test cards of the test-mode page, named as Stripe names its test payment methods: the first
// is charged, the second declines every charge, the third asks for authentication.
const (
	TestCardVisa          = "pm_card_visa"
	TestCardDeclined      = "pm_card_chargeDeclined"
	TestCardAuthRequired  = "pm_card_authenticationRequired"
	MaxConsecutiveFailure = 3
)

// RuleState is where an auto-recharge rule stands, as the low-credit alert does.
type RuleState string

// Rule states.
const (
	// RuleArmed means the next fall below the threshold recharges.
	RuleArmed RuleState = "armed"
	// RuleFired means a recharge was made (or tried) for the current stay below the threshold.
	RuleFired RuleState = "fired"
)

// RechargeRule is an organization's auto-recharge rule.
type RechargeRule struct {
	OrgID     string
	Enabled   bool
	Currency  string
	Threshold money.Nanos
	// Exactly one of Amount (a fixed recharge) and Target (recharge up to it) is positive.
	Amount, Target money.Nanos
	MonthlyCap     money.Nanos
	State          RuleState
	// LastSeq is the last ledger event sequence applied to the rule, of the shard of the event
	// being decided on.
	LastSeq int64
	// InFlight is the automatic payment being charged ("" when none).
	InFlight            string
	ConsecutiveFailures int
	DisabledReason      string
	DisabledAt          time.Time
	UpdatedBy           Member
	UpdatedAt           time.Time
	// MonthSpent is what this calendar month's automatic payments charged or are charging.
	MonthSpent money.Nanos
}

// RuleTrigger is what the recharge trigger keeps in memory of an enabled rule: enough to pass
// over, without the database, the events that cannot change it.
type RuleTrigger struct {
	Currency  string
	Threshold money.Nanos
	UpdatedAt time.Time
}

// MayChange reports whether an observed available balance may change an enabled rule whose state
// this trigger saw last (known false: not seen since the trigger's watch began or the rule
// changed). Only an event below the threshold fires (or caps) an armed rule and only one at or
// above it re-arms a fired one: an armed rule above it, or a fired one below it, stays as it is.
func MayChange(t RuleTrigger, state RuleState, known bool, currency string, available money.Nanos) bool {
	if currency != t.Currency {
		return false
	}
	if !known {
		return true
	}
	return (available < t.Threshold) == (state == RuleArmed)
}

// RuleSettings are the admin-settable fields of a rule.
type RuleSettings struct {
	Enabled                               bool
	Currency                              string
	Threshold, Amount, Target, MonthlyCap money.Nanos
}

// CheckRule validates rule settings; minimum is the smallest top-up, maximum the largest.
func CheckRule(r RuleSettings, minimum, maximum money.Nanos) error {
	if r.Threshold < 0 || r.Amount < 0 || r.Target < 0 || r.MonthlyCap < 0 {
		return fmt.Errorf("%w: auto-recharge amounts must not be negative", ErrInvalid)
	}
	if r.Amount > 0 && r.Target > 0 {
		return fmt.Errorf("%w: set either a fixed amount or a target balance, not both", ErrInvalid)
	}
	if !r.Enabled {
		return nil
	}
	switch {
	case r.Threshold <= 0:
		return fmt.Errorf("%w: threshold: a positive threshold is required to enable auto-recharge", ErrInvalid)
	case r.Amount == 0 && r.Target == 0:
		return fmt.Errorf("%w: set a fixed amount or a target balance to enable auto-recharge", ErrInvalid)
	case r.Target > 0 && r.Target <= r.Threshold:
		return fmt.Errorf("%w: target_balance must be above the threshold", ErrInvalid)
	case r.Amount > 0 && (r.Amount < minimum || r.Amount > maximum):
		return fmt.Errorf("%w: amount must be between %s and %s %s", ErrInvalid, minimum.Display(), maximum.Display(), r.Currency)
	case r.MonthlyCap <= 0:
		return fmt.Errorf("%w: monthly_cap: a positive monthly cap is required to enable auto-recharge", ErrInvalid)
	case r.MonthlyCap < minimum:
		return fmt.Errorf("%w: monthly_cap must be at least the smallest top-up, %s %s", ErrInvalid, minimum.Display(), r.Currency)
	}
	if _, err := ToMinor(money.Money{Nanos: r.Amount, Currency: r.Currency}); err != nil {
		return err
	}
	return nil
}

// RechargeAction is what one observed balance does to a rule.
type RechargeAction int

// Rule actions.
const (
	// RechargeNone changes nothing.
	RechargeNone RechargeAction = iota
	// RechargeFire starts a recharge of RechargeDecision.Amount.
	RechargeFire
	// RechargeRearm arms the rule again (the balance is back at or above the threshold).
	RechargeRearm
	// RechargeCapped marks the crossing handled without a charge: the monthly cap is spent.
	RechargeCapped
	// RechargeSeen only records the event's sequence.
	RechargeSeen
)

// RechargeDecision is DecideRecharge's answer.
type RechargeDecision struct {
	Action RechargeAction
	Amount money.Nanos
}

// DecideRecharge applies the rule to one observed available balance of event seq: an armed,
// enabled rule with no recharge in flight fires when available is below the threshold; a fired
// rule re-arms when it is at or above it. minimum is the smallest charge worth making; the charge
// is the fixed amount, or what reaches the target rounded up to the currency's minor unit, and
// never more than what remains of the monthly cap. Events not newer than the rule's last one
// change nothing, so replicas and replays agree.
func DecideRecharge(r RechargeRule, hasMethod bool, seq int64, available, minimum money.Nanos) RechargeDecision {
	if seq <= r.LastSeq {
		return RechargeDecision{Action: RechargeNone}
	}
	if available >= r.Threshold {
		if r.State == RuleFired {
			return RechargeDecision{Action: RechargeRearm}
		}
		return RechargeDecision{Action: RechargeSeen}
	}
	if !r.Enabled || !hasMethod || r.State == RuleFired || r.InFlight != "" {
		return RechargeDecision{Action: RechargeSeen}
	}
	amount := r.Amount
	if r.Target > 0 {
		amount = CeilMinor(r.Target-available, r.Currency)
	}
	amount = max(amount, minimum)
	if left := r.MonthlyCap - r.MonthSpent; amount > left {
		amount = FloorMinor(left, r.Currency)
	}
	if amount < minimum || amount <= 0 {
		return RechargeDecision{Action: RechargeCapped}
	}
	return RechargeDecision{Action: RechargeFire, Amount: amount}
}

// minorNanos is the number of nanos in one chargeable step of currency.
func minorNanos(currency string) money.Nanos {
	n := money.Nanos(minorStep(currency))
	for range 9 - MinorExponent(currency) {
		n *= 10
	}
	return n
}

// CeilMinor rounds n up to a chargeable amount of currency.
func CeilMinor(n money.Nanos, currency string) money.Nanos {
	step := minorNanos(currency)
	if r := n % step; r != 0 {
		n += step - r
	}
	return n
}

// FloorMinor rounds n down to a chargeable amount of currency.
func FloorMinor(n money.Nanos, currency string) money.Nanos {
	return n - n%minorNanos(currency)
}

// ChargeOutcome is what recording a charge's answer did to the rule.
type ChargeOutcome struct {
	Failures int
	Disabled bool
}

// AfterCharge is the rule after its in-flight recharge ended with status: a success resets the
// failures, a failure counts one more and the third in a row disables the rule.
func AfterCharge(r RechargeRule, status ChargeStatus, now time.Time) (RechargeRule, ChargeOutcome) {
	if status == ChargePending {
		return r, ChargeOutcome{}
	}
	r.InFlight = ""
	if status == ChargeSucceeded {
		r.ConsecutiveFailures = 0
		return r, ChargeOutcome{}
	}
	r.ConsecutiveFailures++
	out := ChargeOutcome{Failures: r.ConsecutiveFailures}
	if r.ConsecutiveFailures >= MaxConsecutiveFailure && r.Enabled {
		r.Enabled, r.DisabledAt, out.Disabled = false, now, true
		r.DisabledReason = fmt.Sprintf("disabled after %d failed recharges in a row; update the card and enable it again", r.ConsecutiveFailures)
	}
	return r, out
}

// RechargeSessionID is the pseudo session id of an automatic payment: its ledger credit uses the
// key "checkout:recharge_<payment id>", in payments' namespace, like every top-up.
func RechargeSessionID(paymentID string) string { return "recharge_" + paymentID }
