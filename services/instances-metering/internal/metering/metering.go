// Package metering is the instances-metering service's use cases: starting and stopping rentals,
// the scheduler that charges every rental at each period boundary, the event stream and the
// delivery of suspension notices.
package metering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/outbox"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
	"github.com/tallyhq/tally/services/instances-metering/internal/store"
)

// ErrKeyUsed is returned by Ledger.Debit when the idempotency key was already used with other
// parameters. Metering keys are per rental period and the parameters differ only in require_funds,
// so it means the period is already charged.
var ErrKeyUsed = errors.New("idempotency key already used")

// ErrLedgerUnavailable wraps transient ledger failures; the charge is retried later.
var ErrLedgerUnavailable = errors.New("ledger unavailable")

// Debit is one period charge asked of the ledger.
type Debit struct {
	OrgID          string
	Amount         money.Money
	IdempotencyKey string
	Description    string
	Metadata       map[string]string
	RequireFunds   bool
}

// Ledger charges organizations. Debit returns the ledger transaction id; it fails with
// rental.ErrInsufficientCredits when RequireFunds refuses, ErrKeyUsed, rental.ErrChargeRefused
// for other refusals, or ErrLedgerUnavailable.
type Ledger interface {
	Debit(ctx context.Context, d Debit) (transactionID string, err error)
	// Available returns an organization's available credits.
	Available(ctx context.Context, orgID string) (money.Nanos, error)
}

// Prices is the in-memory price catalog (catalog.Watcher).
type Prices interface {
	Current() *catalog.Catalog
	// Ready waits until a first catalog has been received or ctx is done.
	Ready(ctx context.Context) error
}

// catalogWait bounds how long a start waits for the first price catalog after a restart.
const catalogWait = 5 * time.Second

// Notifier reports a suspended rental to the organization (the notifications service).
type Notifier interface {
	RentalSuspended(ctx context.Context, orgID, instanceID, idempotencyKey, reason string) error
}

// Config wires a Meter.
type Config struct {
	Store  *store.Store
	Ledger Ledger
	Prices Prices
	Logger *slog.Logger
	// Notifier may be nil: suspension notices then stay queued.
	Notifier Notifier
	// Period is the billing period of new rentals (default 1h); a multiple of a microsecond.
	Period time.Duration
	// Grace lets a rental run into a negative balance down to -Grace (default 0: none).
	Grace money.Nanos
	// BatchSize is how many due rentals one transaction claims (default 500).
	BatchSize int
	// Workers is how many batches are charged at once (default 4).
	Workers int
	// Concurrency bounds the ledger calls in flight per batch (default 256).
	Concurrency int
	// MaxPeriodsPerPass bounds the periods one rental is charged in one transaction (default 100);
	// a longer catch-up continues in the next transaction.
	MaxPeriodsPerPass int64
	// PollInterval bounds how late the scheduler sees rentals started on other replicas and how
	// often it retries failed charges (default 1s).
	PollInterval time.Duration
	// EventPollInterval bounds how late a watcher sees another replica's events (default 250ms).
	EventPollInterval time.Duration
	// LedgerTimeout bounds one ledger call (default 10s).
	LedgerTimeout time.Duration
	Now           func() time.Time
}

// Meter meters rentals.
type Meter struct {
	cfg    Config
	store  *store.Store
	logger *slog.Logger
	// kick wakes the scheduler after a local start.
	kick chan struct{}
	// sequence wakes the event sequencer after a local commit.
	sequence chan struct{}
	// wake wakes the event watchers after events were sequenced.
	wake *outbox.Broadcast
}

// New builds a Meter; Run starts its scheduler.
func New(cfg Config) (*Meter, error) {
	if cfg.Store == nil || cfg.Ledger == nil || cfg.Prices == nil || cfg.Logger == nil {
		return nil, errors.New("metering: store, ledger, prices and logger are required")
	}
	if cfg.Period == 0 {
		cfg.Period = time.Hour
	}
	if err := ValidatePeriod(cfg.Period); err != nil {
		return nil, err
	}
	if cfg.Grace < 0 {
		return nil, errors.New("metering: grace must not be negative")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.MaxPeriodsPerPass <= 0 {
		cfg.MaxPeriodsPerPass = 100
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.EventPollInterval <= 0 {
		cfg.EventPollInterval = 250 * time.Millisecond
	}
	if cfg.LedgerTimeout <= 0 {
		cfg.LedgerTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Meter{cfg: cfg, store: cfg.Store, logger: cfg.Logger, kick: make(chan struct{}, 1),
		sequence: make(chan struct{}, 1), wake: outbox.NewBroadcast()}, nil
}

// ValidatePeriod checks a billing period: at least 1ms and a whole number of microseconds, the
// precision of PostgreSQL timestamps, so that period boundaries are stored exactly.
func ValidatePeriod(p time.Duration) error {
	if p < time.Millisecond || p%time.Microsecond != 0 {
		return fmt.Errorf("billing period %s must be at least 1ms and a whole number of microseconds", p)
	}
	return nil
}

// now returns the current time at the precision of the database.
func (m *Meter) now() time.Time { return m.cfg.Now().UTC().Truncate(time.Microsecond) }

// StartRequest asks to meter a rented instance.
type StartRequest struct {
	InstanceID     string
	OrgID          string
	InstanceType   string
	IdempotencyKey string
}

// Validate checks what can be checked of a start request alone: the ids and the key.
func (r StartRequest) Validate() error {
	if err := rental.ValidateID("instance_id", r.InstanceID); err != nil {
		return err
	}
	if err := rental.ValidateID("org_id", r.OrgID); err != nil {
		return err
	}
	if err := catalog.ValidateID(r.InstanceType); err != nil {
		return fmt.Errorf("%w: instance_type: %w", rental.ErrInvalid, err)
	}
	return rental.ValidateKey(r.IdempotencyKey)
}

// Start locks the hourly price in force now for the instance and charges its first period.
// replayed says the rental existed already and is returned unchanged.
func (m *Meter) Start(ctx context.Context, req StartRequest) (_ rental.Rental, replayed bool, err error) {
	if err := req.Validate(); err != nil {
		return rental.Rental{}, false, err
	}
	// A retry returns the rental even when the type can no longer be rented.
	existing, err := m.store.Get(ctx, req.InstanceID)
	switch {
	case err == nil:
		return matchExisting(existing, req)
	case !errors.Is(err, rental.ErrNotFound):
		return rental.Rental{}, false, err
	}
	cat := m.cfg.Prices.Current()
	if cat == nil {
		wctx, cancel := context.WithTimeout(ctx, catalogWait)
		err := m.cfg.Prices.Ready(wctx)
		cancel()
		if cat = m.cfg.Prices.Current(); err != nil || cat == nil {
			return rental.Rental{}, false, fmt.Errorf("%w: %w", rental.ErrCatalogNotReady, err)
		}
	}
	now := m.now()
	v, err := cat.InstancePrice(req.InstanceType, now)
	switch {
	case errors.Is(err, catalog.ErrNoPriceInForce):
		return rental.Rental{}, false, fmt.Errorf("%w: %w", rental.ErrNotRentable, err)
	case err != nil:
		return rental.Rental{}, false, fmt.Errorf("pricing the instance: %w", err)
	case !v.Available:
		return rental.Rental{}, false, fmt.Errorf("%w: instance type %s is not available", rental.ErrNotRentable, textcheck.Quote(req.InstanceType))
	}
	price, err := rental.PeriodPrice(v.HourlyPrice, m.cfg.Period)
	if err != nil {
		return rental.Rental{}, false, fmt.Errorf("pricing the billing period: %w", err)
	}
	r := rental.Rental{
		InstanceID: req.InstanceID, OrgID: req.OrgID, InstanceType: req.InstanceType, PriceVersionID: v.ID,
		HourlyPrice: v.HourlyPrice, Currency: v.Currency, Period: m.cfg.Period, PeriodPrice: price,
		IdempotencyKey: req.IdempotencyKey, State: rental.StateRunning, StartedAt: now,
	}
	stored, inserted, err := m.store.Start(ctx, r, now, func(ctx context.Context, r rental.Rental) (rental.Outcome, error) {
		return m.charge(ctx, r, now)
	})
	if err != nil {
		return rental.Rental{}, false, err
	}
	if !inserted {
		return matchExisting(stored, req)
	}
	m.logger.Info("rental started", "instance_id", r.InstanceID, "org_id", r.OrgID, "instance_type", r.InstanceType,
		"hourly_price", r.HourlyPrice.Display(), "currency", r.Currency, "period", r.Period.String())
	signal(m.sequence)
	signal(m.kick)
	return stored, false, nil
}

// matchExisting decides what a start of an instance that already has a rental returns.
func matchExisting(r rental.Rental, req StartRequest) (rental.Rental, bool, error) {
	switch {
	case r.OrgID != req.OrgID || r.InstanceType != req.InstanceType:
		return rental.Rental{}, false, fmt.Errorf("%w: instance %s is metered for organization %s as %s", rental.ErrConflict,
			textcheck.Quote(r.InstanceID), textcheck.Quote(r.OrgID), textcheck.Quote(r.InstanceType))
	case r.IdempotencyKey == req.IdempotencyKey, r.State == rental.StateRunning:
		return r, true, nil
	}
	return rental.Rental{}, false, fmt.Errorf("%w: instance %s is %s", rental.ErrEnded, textcheck.Quote(r.InstanceID), r.State)
}

// Stop ends the rental of an instance. Periods that started before now and were not charged yet
// (the scheduler was behind) are charged; nothing later ever is.
func (m *Meter) Stop(ctx context.Context, instanceID string) (rental.Rental, error) {
	if err := rental.ValidateID("instance_id", instanceID); err != nil {
		return rental.Rental{}, err
	}
	now := m.now()
	r, err := m.store.Stop(ctx, instanceID, now, func(ctx context.Context, r rental.Rental) rental.Outcome {
		out, err := m.charge(ctx, r, now)
		if err != nil {
			// The stop stands; the scheduler charges the rest.
			m.logger.Warn("charging the last periods of a stopped rental failed", "instance_id", r.InstanceID, "err", err)
		}
		return out
	})
	if err != nil {
		return rental.Rental{}, err
	}
	signal(m.sequence)
	return r, nil
}

// signal wakes the goroutine waiting on ch, if it is not already woken.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Get returns the rental of an instance.
func (m *Meter) Get(ctx context.Context, instanceID string) (rental.Rental, error) {
	if err := rental.ValidateID("instance_id", instanceID); err != nil {
		return rental.Rental{}, err
	}
	return m.store.Get(ctx, instanceID)
}

// List returns up to limit rentals of an organization, newest first, below beforeID when set.
func (m *Meter) List(ctx context.Context, orgID string, limit int, beforeID int64) ([]rental.Rental, error) {
	if err := rental.ValidateID("org_id", orgID); err != nil {
		return nil, err
	}
	return m.store.List(ctx, orgID, limit, beforeID)
}

// charge charges the periods of r due at now, in order, and stops at the first that cannot be
// paid (suspending a running rental) or that fails. A running rental's periods require funds (or
// fit the grace); a stopped rental's remaining periods were used already and are recorded even
// below zero. The outcome holds the periods charged before any error.
func (m *Meter) charge(ctx context.Context, r rental.Rental, now time.Time) (rental.Outcome, error) {
	var out rental.Outcome
	due := min(r.DuePeriods(now), m.cfg.MaxPeriodsPerPass)
	running := r.State == rental.StateRunning
	for i := range due {
		n := r.PeriodsCharged + i
		if r.PeriodPrice == 0 {
			out.Charges = append(out.Charges, rental.Charge{Period: n})
			continue
		}
		txID, err := m.debit(ctx, r, n, running)
		grace := false
		if errors.Is(err, rental.ErrInsufficientCredits) && running && m.cfg.Grace > 0 {
			var ok bool
			if ok, err = m.withinGrace(ctx, r); err == nil {
				if !ok {
					err = rental.ErrInsufficientCredits
				} else {
					txID, err = m.debit(ctx, r, n, false)
					grace = true
				}
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrKeyUsed):
			// Charged before, by a transaction that did not commit its record (a crash or a
			// replica cut off mid-batch) with the other require_funds setting.
			m.logger.Info("period already charged", "instance_id", r.InstanceID, "period", n)
			txID = ""
		case errors.Is(err, rental.ErrInsufficientCredits) && running:
			out.Suspended, out.RefusedPeriod = true, n
			m.logger.Info("rental suspended for insufficient credits", "instance_id", r.InstanceID, "org_id", r.OrgID, "period", n)
			return out, nil
		default:
			return out, fmt.Errorf("charging period %d of instance %s: %w", n, r.InstanceID, err)
		}
		out.Charges = append(out.Charges, rental.Charge{Period: n, Amount: r.PeriodPrice, TransactionID: txID, Grace: grace})
	}
	return out, nil
}

func (m *Meter) debit(ctx context.Context, r rental.Rental, n int64, requireFunds bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.LedgerTimeout)
	defer cancel()
	return m.cfg.Ledger.Debit(ctx, Debit{
		OrgID:          r.OrgID,
		Amount:         money.Money{Nanos: r.PeriodPrice, Currency: r.Currency},
		IdempotencyKey: rental.ChargeKey(r.InstanceID, n),
		Description:    r.ChargeDescription(n),
		Metadata:       r.ChargeMetadata(n),
		RequireFunds:   requireFunds,
	})
}

// withinGrace reports whether charging one more period leaves the organization at or above
// -Grace. Concurrent charges of the same organization may each pass this check, so the grace is
// a bound per period, not a hard floor.
func (m *Meter) withinGrace(ctx context.Context, r rental.Rental) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.LedgerTimeout)
	defer cancel()
	avail, err := m.cfg.Ledger.Available(ctx, r.OrgID)
	if err != nil {
		return false, fmt.Errorf("reading the balance for the grace: %w", err)
	}
	after, err := money.Add(avail, -r.PeriodPrice)
	if err != nil {
		return false, err
	}
	return after >= -m.cfg.Grace, nil
}
