// Package payment holds the payments domain: payments and their state machine, refunds, invoices,
// billing profiles, review items, the interfaces the application consumes, and domain errors.
package payment

import (
	"errors"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// Domain errors; grpcapi maps them to status codes in one place.
var (
	// ErrInvalid is a request that can never succeed as sent.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound is a payment, document or review item that does not exist (for this organization).
	ErrNotFound = errors.New("not found")
	// ErrFailedPrecondition is a request refused in the current state, e.g. refunding a pending payment.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrBadSignature is a webhook delivery whose signature is missing, forged or stale.
	ErrBadSignature = errors.New("invalid webhook signature")
	// ErrUnavailable is a dependency (Stripe, the ledger) that failed in a way worth retrying.
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrRejected is a dependency that refused a request for good (retrying will not help).
	ErrRejected = errors.New("rejected by dependency")
	// ErrAlreadyExists is an idempotency key already used with other parameters.
	ErrAlreadyExists = errors.New("already exists")
)

// Status is the life cycle of a payment.
type Status string

// Payment statuses.
const (
	StatusPending   Status = "pending"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusExpired   Status = "expired"
	StatusRefunded  Status = "refunded"
	StatusDisputed  Status = "disputed"
)

// Mode says who runs a payment's checkout.
type Mode string

// Checkout modes.
const (
	// ModeStripe is Stripe Checkout (test or live keys).
	ModeStripe Mode = "stripe"
	// ModeLocal is the local test-mode checkout page used without Stripe keys.
	ModeLocal Mode = "local"
)

// Member is the member of an organization who started a payment.
type Member struct {
	ID    string
	Name  string
	Email string
}

// Payment is one top-up through a Checkout Session.
type Payment struct {
	ID                string
	OrgID             string
	Mode              Mode
	Amount            money.Money
	AmountMinor       int64
	Status            Status
	Member            Member
	CheckoutSessionID string
	CheckoutURL       string
	PaymentIntentID   string
	// PaymentMethod is how it was paid ("card"); PaymentWallet the card wallet it went through
	// ("google_pay", "apple_pay"), empty for a card entered by hand or when unknown.
	PaymentMethod string
	PaymentWallet string
	// AwaitingAsync is set when Checkout completed but the payment is still processing.
	AwaitingAsync bool
	// LocalPaidAt is when the local test-mode checkout page was paid (ModeLocal only).
	LocalPaidAt time.Time
	// CreditedAt is when the ledger credit was recorded; zero until then.
	CreditedAt          time.Time
	LedgerTransactionID string
	PaidAt              time.Time
	Refunded            money.Nanos
	InvoiceNumber       string
	UnderReview         bool
	ExpiresAt           time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
	// FulfilAfter, while set on a payment not credited yet, is when the retry worker credits it:
	// it was found paid and the ledger has not confirmed the credit. FulfilAttempts counts the
	// attempts that failed on a dependency.
	FulfilAfter    time.Time
	FulfilAttempts int
	// Refunds are the payment's refunds, oldest first, when the query that returned it asked for them.
	Refunds []Refund
	// Automatic is a payment auto-recharge made: charged off-session with the saved card, with
	// the pseudo session id RechargeSessionID(ID). FailureReason is why its charge failed.
	Automatic      bool
	FailureReason  ChargeStatus
	FailureMessage string
}

// Payment methods and card wallets as Stripe names them.
const (
	MethodCard      = "card"
	WalletGooglePay = "google_pay"
)

// Credited reports whether the payment's credits were granted.
func (p Payment) Credited() bool { return !p.CreditedAt.IsZero() }

// RefundStatus is the life cycle of a refund.
type RefundStatus string

// Refund statuses.
const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
)

// Refund is money returned to the payer of a payment.
type Refund struct {
	ID                  string
	PaymentID           string
	OrgID               string
	Amount              money.Money
	AmountMinor         int64
	Status              RefundStatus
	Reason              string
	RequestedBy         string
	StripeRefundID      string
	CreditsTakenBack    money.Nanos
	CreditsNotRecovered money.Nanos
	CreditNoteNumber    string
	CreatedAt           time.Time
	CompletedAt         time.Time
	// IdempotencyKey is the key the refund was requested with; Requested the amount asked for
	// (0: everything not refunded yet). With PaymentID and Reason they are what a retry must repeat.
	IdempotencyKey string
	Requested      money.Nanos
	// TakeBack is the credits decided to be taken back, once TakeBackDecided: a resumed refund
	// sends the ledger the same adjustment.
	TakeBack        money.Nanos
	TakeBackDecided bool
	// StripeStatus is the processor's status of StripeRefundID as last seen.
	StripeStatus ProcessorRefundStatus
	// Attempts counts the attempts to carry the refund out that failed on a dependency, LastError
	// the last of them; RetryAt is when the retry worker tries again.
	Attempts  int
	LastError string
	RetryAt   time.Time
}

// SameRequest reports whether a refund request repeats the one r was created by: the same
// payment, requested amount and reason.
func (r Refund) SameRequest(paymentID string, requested money.Nanos, reason string) bool {
	return r.PaymentID == paymentID && r.Requested == requested && r.Reason == reason
}

// BillingProfile holds the customer details printed on an organization's invoices.
type BillingProfile struct {
	OrgID     string
	LegalName string
	Address   string
	TaxID     string
	Email     string
	UpdatedAt time.Time
	UpdatedBy string
}

// DocumentKind distinguishes invoices from credit notes.
type DocumentKind string

// Document kinds; each has its own numbering series.
const (
	KindInvoice    DocumentKind = "invoice"
	KindCreditNote DocumentKind = "credit_note"
)

// Series returns the numbering series of a document kind.
func (k DocumentKind) Series() string {
	if k == KindCreditNote {
		return "CN"
	}
	return "INV"
}

// Document is an issued, immutable invoice or credit note.
type Document struct {
	ID        string
	Kind      DocumentKind
	Number    string
	PaymentID string
	RefundID  string
	OrgID     string
	IssuedAt  time.Time
	PDF       []byte
	SHA256    []byte
}

// Review item kinds.
const (
	ReviewLateFailure    = "late_failure"
	ReviewDispute        = "dispute"
	ReviewExternalRefund = "external_refund"
	ReviewAmountMismatch = "amount_mismatch"
	ReviewCreditRefused  = "credit_refused"
	ReviewUnknownSession = "unknown_session"
	ReviewRefundPartial  = "refund_incomplete"
	// ReviewPaidAfterExpiry is money reported received for a Checkout Session tally had seen
	// expire: it is not credited automatically.
	ReviewPaidAfterExpiry = "paid_after_expiry"
)

// ReviewItem is something ops must decide on: nothing is voided automatically.
type ReviewItem struct {
	ID            string
	PaymentID     string
	OrgID         string
	Kind          string
	Detail        string
	StripeEventID string
	CreatedAt     time.Time
	ResolvedAt    time.Time
	ResolvedBy    string
	Resolution    string
}
