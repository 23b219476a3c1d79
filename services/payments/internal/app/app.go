// Package app is the payments application: checkout, webhook processing with its exactly-once
// fulfilment, reconciliation, refunds, invoices, billing profiles and review items. It depends on
// the store and on small interfaces for the ledger and the checkout processor (Stripe, or the
// local test-mode checkout).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/invoice"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// Processor runs Checkout Sessions and refunds: Stripe, or the local test-mode checkout.
type Processor interface {
	Mode() payment.Mode
	CreateSession(ctx context.Context, req SessionRequest) (CreatedSession, error)
	// Refund asks for a refund with the idempotency key "refund:<refund id>": a retried call
	// reaches the same processor refund.
	Refund(ctx context.Context, req RefundRequest) (ProcessorRefund, error)
	// RefundStatus reads a processor refund, to follow one in flight.
	RefundStatus(ctx context.Context, processorRefundID string) (ProcessorRefund, error)
	// FindRefund looks for the processor refund made for req.RefundID (by its metadata), for a
	// refund older than the processor keeps idempotency keys; found is false when there is none.
	FindRefund(ctx context.Context, req RefundRequest) (r ProcessorRefund, found bool, err error)
	// RecentSessions returns the sessions created since since, for reconciliation.
	RecentSessions(ctx context.Context, since time.Time) ([]payment.Session, error)
	// Session returns the current state of one Checkout Session, for the expiry sweep; a session
	// the processor does not know wraps payment.ErrRejected.
	Session(ctx context.Context, sessionID string) (payment.Session, error)
}

// SessionRequest asks a processor for a Checkout Session.
type SessionRequest struct {
	PaymentID   string
	OrgID       string
	Member      payment.Member
	AmountMinor int64
	Currency    string
	// ExpiresAt is when the session stops being payable (Stripe: 30 minutes to 24 hours ahead).
	ExpiresAt time.Time
}

// CreatedSession is a Checkout Session ready to be paid.
type CreatedSession struct {
	ID        string
	URL       string
	ExpiresAt time.Time
}

// RefundRequest asks a processor to refund part of a payment.
type RefundRequest struct {
	RefundID        string
	SessionID       string
	PaymentIntentID string
	AmountMinor     int64
	Currency        string
	Reason          string
}

// ProcessorRefund is a refund at the processor.
type ProcessorRefund struct {
	ID     string
	Status payment.ProcessorRefundStatus
}

// Ledger is what payments needs from the ledger. Its errors wrap payment.ErrRejected for a
// definitive refusal and payment.ErrUnavailable for anything worth retrying.
type Ledger interface {
	Currency(ctx context.Context, orgID string) (string, error)
	Available(ctx context.Context, orgID string) (money.Money, error)
	Credit(ctx context.Context, req CreditRequest) (Credited, error)
	// TakeBack removes amount (positive) from the organization's balance.
	TakeBack(ctx context.Context, orgID string, amount money.Money, key, reason string) (string, error)
}

// CreditRequest is a top-up credit; the same request with the same key credits once.
type CreditRequest struct {
	OrgID          string
	Amount         money.Money
	IdempotencyKey string
	Reason         string
	Reference      string
}

// Credited is a granted credit.
type Credited struct {
	TransactionID string
	ExpiresAt     time.Time
}

// Verifier authenticates webhook deliveries.
type Verifier interface {
	Verify(payload []byte, signature string) (payment.Event, error)
}

// Config wires an App.
type Config struct {
	Store     *store.Store
	Ledger    Ledger
	Processor Processor
	Verifier  Verifier
	Seller    invoice.Seller
	// TopUpMin and TopUpMax bound a top-up, in units of the organization's currency; TopUpPresets
	// are the amounts the Add Credits dialog suggests, ascending and within them.
	TopUpMin, TopUpMax money.Nanos
	TopUpPresets       []money.Nanos
	// CheckoutExpiry is how long a Checkout Session stays payable (payment.MinCheckoutExpiry to
	// payment.MaxCheckoutExpiry); DefaultCheckoutExpiry when zero.
	CheckoutExpiry time.Duration
	// ValidityMonths is how many calendar months the ledger keeps credits valid (0: not a whole
	// number of months).
	ValidityMonths int
	// MaxRequestAmount bounds the amount of any one request (TALLY_MAX_REQUEST_AMOUNT).
	MaxRequestAmount money.Nanos
	// ReconcileLookback is how far back reconciliation looks at Checkout Sessions.
	ReconcileLookback time.Duration
	// Backoff spaces the retries of fulfilments and refunds that failed on a dependency.
	Backoff payment.Backoff
	// Lease is how long a request or the retry worker owns the fulfilment or refund it works on
	// before another one may take it over; it must exceed the deadlines of that work's calls.
	Lease time.Duration
	// RetryBatch bounds the work one retry pass claims.
	RetryBatch int
	Logger     *slog.Logger
}

// Defaults of the retry settings.
const (
	DefaultLease        = 2 * time.Minute
	DefaultBackoff      = 5 * time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultRetryBatch   = 20
	DefaultRetryEvery   = 5 * time.Second
	defaultLookbackDays = 3
)

// App is the payments application.
type App struct {
	cfg    Config
	store  *store.Store
	ledger Ledger
	proc   Processor
	logger *slog.Logger
}

// New returns an App.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.Ledger == nil || cfg.Processor == nil || cfg.Verifier == nil || cfg.Logger == nil {
		return nil, errors.New("app: store, ledger, processor, verifier and logger are required")
	}
	if cfg.TopUpMin <= 0 || cfg.TopUpMax < cfg.TopUpMin {
		return nil, fmt.Errorf("app: top-up limits must satisfy 0 < min <= max, got %s and %s", cfg.TopUpMin.Display(), cfg.TopUpMax.Display())
	}
	if cfg.MaxRequestAmount <= 0 {
		return nil, errors.New("app: the per-request maximum amount must be positive")
	}
	if err := payment.CheckPresets(cfg.TopUpPresets, cfg.TopUpMin, cfg.TopUpMax); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if cfg.CheckoutExpiry == 0 {
		cfg.CheckoutExpiry = payment.DefaultCheckoutExpiry
	}
	if err := payment.CheckCheckoutExpiry(cfg.CheckoutExpiry); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if cfg.ReconcileLookback <= 0 {
		cfg.ReconcileLookback = defaultLookbackDays * 24 * time.Hour
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Backoff.Base <= 0 {
		cfg.Backoff.Base = DefaultBackoff
	}
	if cfg.Backoff.Max < cfg.Backoff.Base {
		cfg.Backoff.Max = max(DefaultMaxBackoff, cfg.Backoff.Base)
	}
	if cfg.RetryBatch <= 0 {
		cfg.RetryBatch = DefaultRetryBatch
	}
	return &App{cfg: cfg, store: cfg.Store, ledger: cfg.Ledger, proc: cfg.Processor, logger: cfg.Logger}, nil
}

// TestMode reports whether checkouts run on the local test-mode page.
func (a *App) TestMode() bool { return a.proc.Mode() == payment.ModeLocal }
