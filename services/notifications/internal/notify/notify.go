// Package notify holds the notifications domain: member settings, the low-credit alert rule,
// the kinds of email and the errors the service returns.
package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/tallyhq/tally/pkg/fieldviolation"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// Domain errors; grpcapi.Errors maps them to gRPC status codes.
var (
	ErrInvalid          = errors.New("invalid argument")
	ErrPermissionDenied = errors.New("permission denied")
	// ErrCursorMoved means another evaluator advanced the event cursor first.
	ErrCursorMoved = errors.New("event cursor moved")
)

// AlertState is where a member's low-credit alert stands.
type AlertState string

// Alert states.
const (
	// AlertArmed means the next fall below the threshold sends an alert.
	AlertArmed AlertState = "armed"
	// AlertFired means an alert was sent for the current stay below the threshold.
	AlertFired AlertState = "fired"
)

// EmailKind says what an email is about.
type EmailKind string

// Email kinds.
const (
	KindLowCredit        EmailKind = "low_credit"
	KindCreditsExpiring  EmailKind = "credits_expiring"
	KindCreditsExpired   EmailKind = "credits_expired"
	KindPaymentSucceeded EmailKind = "payment_succeeded"
	KindRentalSuspended  EmailKind = "rental_suspended"
	// KindRechargeDeclined and KindRechargeAuthRequired tell the admins an automatic recharge
	// failed; they are not opt-in.
	KindRechargeDeclined     EmailKind = "recharge_declined"
	KindRechargeAuthRequired EmailKind = "recharge_authentication_required"
	// KindSpendAlert goes to every member with an address when the organization's spending of
	// the month reaches the alert percentage of the spend limit its admins set: it is the
	// organization's setting, not a member's opt-in.
	KindSpendAlert EmailKind = "spend_alert"
)

// EmailKinds lists every kind, for templates and tests.
var EmailKinds = []EmailKind{KindLowCredit, KindCreditsExpiring, KindCreditsExpired, KindPaymentSucceeded, KindRentalSuspended,
	KindRechargeDeclined, KindRechargeAuthRequired, KindSpendAlert}

// Evaluate applies the low-credit rule to one observed balance: an armed alert fires when the
// balance is below the threshold, a fired alert re-arms when the balance is at or above it.
func Evaluate(state AlertState, balance, threshold money.Nanos) (next AlertState, fire bool) {
	switch {
	case balance < threshold && state != AlertFired:
		return AlertFired, true
	case balance >= threshold && state != AlertArmed:
		return AlertArmed, false
	}
	return state, false
}

// Balance is an organization's balance as last seen by the service.
type Balance struct {
	OrgID     string
	Currency  string
	Balance   money.Nanos
	Available money.Nanos
	ExpiresAt time.Time // zero when nothing expires
	// Seq is the ledger event sequence it comes from; 0 when read with GetBalance.
	Seq int64
}

// Preferences are the member-settable fields of Settings.
type Preferences struct {
	LowCreditEnabled        bool
	Threshold               money.Money // Currency "" when never set
	EmailOverride           string      // "" means the account email
	CreditsExpiringEnabled  bool
	CreditsExpiredEnabled   bool
	PaymentSucceededEnabled bool
	RentalSuspendedEnabled  bool
}

// DefaultPreferences are the settings of a member seen for the first time: the low-credit
// alert off, the other emails on for admins and off for members.
func DefaultPreferences(admin bool) Preferences {
	return Preferences{
		CreditsExpiringEnabled:  admin,
		CreditsExpiredEnabled:   admin,
		PaymentSucceededEnabled: admin,
		RentalSuspendedEnabled:  admin,
	}
}

// Settings are one member's notification settings in one organization.
type Settings struct {
	OrgID    string
	MemberID string
	Preferences
	// AccountEmail is the email of the member's token, refreshed on every call.
	AccountEmail string
	AlertState   AlertState
	// AlertGeneration counts the alerts fired; it is part of each alert's idempotency key.
	AlertGeneration int64
	UpdatedAt       time.Time
}

// Email returns the address emails go to: the override, else the account email.
func (s Settings) Email() string { return addressOf(s.EmailOverride, s.AccountEmail) }

// addressOf is where a member's emails go: the override they set, else their account email.
func addressOf(override, account string) string {
	if override != "" {
		return override
	}
	return account
}

// Wants reports whether the member opted in to emails of kind k.
func (p Preferences) Wants(k EmailKind) bool {
	switch k {
	case KindLowCredit:
		return p.LowCreditEnabled
	case KindCreditsExpiring:
		return p.CreditsExpiringEnabled
	case KindCreditsExpired:
		return p.CreditsExpiredEnabled
	case KindPaymentSucceeded:
		return p.PaymentSucceededEnabled
	case KindRentalSuspended:
		return p.RentalSuspendedEnabled
	case KindSpendAlert:
		return true
	}
	// The failed-recharge emails are not opt-in: payments names the admins they go to.
	return false
}

// Reconsider returns the alert state after a settings change from before to after, given the
// latest known balance (nil when unknown): enabling the alert, or changing its threshold,
// re-evaluates it, so that enabling while already below the threshold fires once. Turning the
// alert off re-arms it.
func Reconsider(before, after Settings, bal *Balance) (next AlertState, fire bool) {
	if !after.LowCreditEnabled {
		return AlertArmed, false
	}
	state := before.AlertState
	if !before.LowCreditEnabled {
		state = AlertArmed
	} else if before.Threshold == after.Threshold {
		return state, false
	}
	if bal == nil || bal.Currency != after.Threshold.Currency {
		return state, false
	}
	return Evaluate(state, bal.Balance, after.Threshold.Nanos)
}

// ValidatePreferences checks p as set by a member whose token email is accountEmail, against
// the organization's currency when known.
func ValidatePreferences(p Preferences, accountEmail, orgCurrency string) error {
	if p.EmailOverride != "" {
		if err := ValidateEmail(p.EmailOverride); err != nil {
			return err
		}
	}
	if p.Threshold.Currency != "" || p.Threshold.Nanos != 0 {
		if p.Threshold.Currency == "" {
			return fmt.Errorf("%w: low_credit_threshold: currency_code is required", ErrInvalid)
		}
		if p.Threshold.Nanos < 0 {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("low_credit_threshold", "must not be negative"))
		}
		if orgCurrency != "" && p.Threshold.Currency != orgCurrency {
			return fmt.Errorf("%w: low_credit_threshold is in %s but the organization's balance is in %s", ErrInvalid, p.Threshold.Currency, orgCurrency)
		}
	}
	if p.LowCreditEnabled && p.Threshold.Currency == "" {
		return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("low_credit_threshold", "is required to enable the low-credit alert"))
	}
	anyEmail := p.LowCreditEnabled || p.CreditsExpiringEnabled || p.CreditsExpiredEnabled || p.PaymentSucceededEnabled || p.RentalSuspendedEnabled
	if anyEmail && p.EmailOverride == "" && accountEmail == "" {
		return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("email", "is required: the token carries no email"))
	}
	return nil
}

// ValidateEmail checks a bare email address such as "ada@example.com".
func ValidateEmail(s string) error {
	if err := textcheck.FreeText("email", s, 254); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return fmt.Errorf("%w: email %s is not a bare address like ada@example.com", ErrInvalid, textcheck.Quote(s))
	}
	return nil
}

// ErrNotFound means the member has no settings yet.
var ErrNotFound = errors.New("not found")

// EventKind is the kind of a ledger balance event, as the ledger names it.
type EventKind string

// Ledger event kinds the service acts on; the others only update the balance.
const (
	EventCredit EventKind = "credit"
	// EventGrant is a credit granted by ops rather than paid.
	EventGrant  EventKind = "grant"
	EventExpiry EventKind = "expiry"
	// EventSpendAlert is the ledger's spend alert: once per UTC month and limit (the ledger
	// decides the crossing in the commit of the charge).
	EventSpendAlert EventKind = "spend_alert"
)

// LedgerEvent is one committed balance change read from the ledger's event stream.
type LedgerEvent struct {
	// Shard is the ledger shard the event was committed on and Seq its number there: sequences
	// are per shard. Cursor is the stream position to resume after it.
	Shard         string
	Seq           int64
	Cursor        string
	OrgID         string
	Kind          EventKind
	TransactionID string
	Currency      string
	Amount        money.Nanos
	Balance       money.Nanos
	Available     money.Nanos
	ExpiresAt     time.Time // zero when nothing expires
	OccurredAt    time.Time
	// SpendLimit is set on spend alerts (Amount is then the month's spending).
	SpendLimit money.Nanos
}

// Attempt is the outcome of one delivery attempt of an email.
type Attempt struct {
	// MessageID is the Message-ID header sent.
	MessageID string
	// Err is nil when the SMTP server accepted the email.
	Err error
	// GiveUp marks the email failed for good (permanent error or too many attempts).
	GiveUp bool
	// RetryAt is when to try again when Err is set and GiveUp is not.
	RetryAt time.Time
}
