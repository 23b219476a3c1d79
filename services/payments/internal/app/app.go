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
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/invoice"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// Ledger is what payments needs from the ledger (pkg/ledgerclient). Its errors are
// ledgerclient's: ErrRefused for a definitive refusal (see ledgerError), ErrUnavailable and
// ErrBadReply for anything worth retrying.
type Ledger interface {
	Balance(ctx context.Context, orgID string) (ledgerclient.Balance, error)
	Credit(ctx context.Context, r ledgerclient.Credit) (ledgerclient.Credited, error)
	Adjust(ctx context.Context, r ledgerclient.Adjust) (string, error)
}

var _ Ledger = (*ledgerclient.Client)(nil)

// ledgerError makes a definitive refusal of the ledger a payment.ErrRejected: retrying cannot
// help, the caller records the refusal. Every other ledger error is kept as it is and is worth
// retrying: the ledger unavailable or refusing our own token (payments' problem, never a reason
// to drop a paid top-up), a malformed reply (a bug or version skew: Internal to the caller, the
// retry worker tries again), the caller's context.
func ledgerError(err error) error {
	if err != nil && errors.Is(err, ledgerclient.ErrRefused) {
		return fmt.Errorf("%w: %w", payment.ErrRejected, err)
	}
	return err
}

// Verifier authenticates webhook deliveries.
type Verifier interface {
	Verify(payload []byte, signature string) (payment.Event, error)
}

// Config wires an App.
type Config struct {
	Store     *store.Store
	Ledger    Ledger
	Processor payment.Processor
	Verifier  Verifier
	// Watcher follows the ledger's events for auto-recharge (nil: no trigger); Notifier emails
	// the admins about failed recharges (nil: none are sent).
	Watcher  Watcher
	Notifier Notifier
	// RuleRefresh is how often the recharge trigger reloads the enabled rules it keeps in memory
	// (a rule saved on another replica is seen within it); DefaultRuleRefresh when zero.
	RuleRefresh time.Duration
	// PendingChargeCheck is how long a charge the processor left pending (processing) waits for
	// its webhook before the retry worker looks its PaymentIntent up; DefaultPendingChargeCheck
	// when zero.
	PendingChargeCheck time.Duration
	// TriggerBatch bounds the ledger events the trigger applies between two advances of its
	// cursor; DefaultTriggerBatch when zero.
	TriggerBatch int
	Seller       invoice.Seller
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
	// Replica names this replica in the reconciliation passes it claims; empty is host:pid.
	Replica string
	// Backoff spaces the retries of fulfilments and refunds that failed on a dependency.
	Backoff payment.Backoff
	// Lease is how long a request or the retry worker owns the fulfilment or refund it works on
	// before another one may take it over; it must exceed the deadlines of that work's calls.
	Lease time.Duration
	// RetryBatch bounds the work one retry pass claims.
	RetryBatch int
	Logger     *slog.Logger
	// Metrics registers payments' metrics (the server's registry); nil registers nothing.
	Metrics prometheus.Registerer
	// Now is the business clock (expiries, backoffs, leases, payment times); nil is time.Now.
	Now func() time.Time
}

// Defaults of the retry settings.
const (
	DefaultLease        = 2 * time.Minute
	DefaultBackoff      = 5 * time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultRetryBatch   = 20
	DefaultRetryEvery   = 5 * time.Second
	DefaultRuleRefresh  = 30 * time.Second
	DefaultTriggerBatch = 256
	// DefaultPendingChargeCheck leaves Stripe's webhook (sent within seconds, retried for days)
	// time to come first.
	DefaultPendingChargeCheck = 15 * time.Minute
	defaultLookbackDays       = 3
)

// App is the payments application.
type App struct {
	cfg     Config
	store   *store.Store
	ledger  Ledger
	proc    payment.Processor
	logger  *slog.Logger
	metrics *metrics
	// rules is the recharge trigger's memory of the enabled rules.
	rules *triggerRules
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
	if cfg.Replica == "" {
		host, _ := os.Hostname()
		cfg.Replica = host + ":" + strconv.Itoa(os.Getpid())
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryBatch <= 0 {
		cfg.RetryBatch = DefaultRetryBatch
	}
	if cfg.RuleRefresh <= 0 {
		cfg.RuleRefresh = DefaultRuleRefresh
	}
	if cfg.PendingChargeCheck <= 0 {
		cfg.PendingChargeCheck = DefaultPendingChargeCheck
	}
	if cfg.TriggerBatch <= 0 {
		cfg.TriggerBatch = DefaultTriggerBatch
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	return &App{cfg: cfg, store: cfg.Store, ledger: cfg.Ledger, proc: cfg.Processor, logger: cfg.Logger, metrics: m,
		rules: newTriggerRules()}, nil
}

// now is the business clock.
func (a *App) now() time.Time { return a.cfg.Now() }

// TestMode reports whether checkouts run on the local test-mode page.
func (a *App) TestMode() bool { return a.proc.Mode() == payment.ModeLocal }
