// Package app is the instances-metering service's use cases: starting and stopping rentals,
// the scheduler that charges every rental at each period boundary, the event stream and the
// delivery of suspension notices.
//
// No transaction is open across a call to the ledger or the notifications service: every charge
// goes claim → commit → call → record. A rental is claimed (a lease with a token, committed),
// the ledger is called with its own deadline and no transaction open, and the outcome is
// recorded with the claim released in a new short transaction that only applies while the claim
// is still this one. A replica that dies between the call and the record leaves its claim to
// expire; whoever claims the rental next sends the same debits again (idempotency key
// rental:<instance>:<n>), the ledger replays them, and each period is recorded exactly once.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/outbox"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
	"github.com/tallyhq/tally/services/instances-metering/internal/store"
)

// Ledger charges organizations: a *ledgerclient.Client. Its errors are ledgerclient's
// (ErrFailedPrecondition, ErrKeyReused, ErrRefused, ErrUnavailable, ErrBadReply or the caller's
// context error); chargeOutcome says what each means for a rental. Each call has the client's own
// deadline (LedgerTimeout).
type Ledger interface {
	Debit(ctx context.Context, d ledgerclient.Debit) (transactionID string, err error)
	Balance(ctx context.Context, orgID string) (ledgerclient.Balance, error)
}

// Prices is the in-memory price catalog (catalog.Watcher).
type Prices interface {
	Current() *catalog.Catalog
	// Ready waits until a first catalog has been received or ctx is done.
	Ready(ctx context.Context) error
}

// catalogWait bounds how long a start waits for the first price catalog after a restart.
const catalogWait = 5 * time.Second

// Config wires a Meter.
type Config struct {
	Store  *store.Store
	Ledger Ledger
	Prices Prices
	Logger *slog.Logger
	// Notifier may be nil: suspension notices then stay queued.
	Notifier rental.Notifier
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
	// LedgerTimeout is the deadline of one ledger call, the Ledger's own (default 10s); it bounds
	// the claim lease and each notice delivery.
	LedgerTimeout time.Duration
	// ClaimLease is how long a claim on rentals holds before another replica may take them
	// over (default 1m). The ledger calls of a claim stop after three quarters of it, so that
	// the outcome is normally recorded before the lease ends; it must be at least four
	// LedgerTimeouts (a grace charge makes three calls).
	ClaimLease time.Duration
	// Replica names this replica in its claims (default: host name and a random suffix).
	Replica string
	Now     func() time.Time
	// Metrics registers the metering's metrics (the server's registry); nil registers nothing.
	Metrics prometheus.Registerer
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
	wake    *outbox.Broadcast
	metrics *metrics
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
	if cfg.ClaimLease == 0 {
		cfg.ClaimLease = time.Minute
	}
	if cfg.ClaimLease < 4*cfg.LedgerTimeout {
		return nil, fmt.Errorf("metering: claim lease %s must be at least 4 ledger timeouts (%s)", cfg.ClaimLease, 4*cfg.LedgerTimeout)
	}
	if cfg.Replica == "" {
		cfg.Replica = config.ReplicaName("instances-metering")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	metrics, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	return &Meter{cfg: cfg, store: cfg.Store, logger: cfg.Logger, kick: make(chan struct{}, 1),
		sequence: make(chan struct{}, 1), wake: outbox.NewBroadcast(), metrics: metrics}, nil
}

// claim returns a new claim of this replica for work charging the periods started by horizon.
func (m *Meter) claim(horizon time.Time) store.Claim {
	return store.Claim{Token: uuid.NewString(), Owner: m.cfg.Replica, Horizon: horizon, Expires: horizon.Add(m.cfg.ClaimLease)}
}

// callContext returns the context of the ledger calls made under a claim: detached from the
// caller (a claimed charge runs to its end, so that a client hanging up does not leave it in
// doubt) and ending after three quarters of the lease, before another replica may take over.
func (m *Meter) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), m.cfg.ClaimLease*3/4)
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
	if err := ids.ID("instance_id", r.InstanceID); err != nil {
		return fmt.Errorf("%w: %w", rental.ErrInvalid, err)
	}
	if err := ids.OrgID(r.OrgID); err != nil {
		return fmt.Errorf("%w: %w", rental.ErrInvalid, err)
	}
	if err := catalog.ValidateID(r.InstanceType); err != nil {
		return fmt.Errorf("%w: instance_type: %w", rental.ErrInvalid, err)
	}
	if err := ids.IdempotencyKey("idempotency_key", r.IdempotencyKey); err != nil {
		return fmt.Errorf("%w: %w", rental.ErrInvalid, err)
	}
	return nil
}

// Start locks the hourly price in force now for the instance and charges its first period.
// replayed says the rental existed already and is returned unchanged.
func (m *Meter) Start(ctx context.Context, req StartRequest) (_ rental.Rental, replayed bool, err error) {
	if err := req.Validate(); err != nil {
		return rental.Rental{}, false, err
	}
	// A retry returns the rental even when the type can no longer be rented.
	existing, err := m.store.Lookup(ctx, req.InstanceID)
	switch {
	case err == nil:
		return m.existingStart(ctx, existing, req)
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
		IdempotencyKey: req.IdempotencyKey, State: rental.StateStarting, StartedAt: now,
	}
	// Claim: the rental is inserted as starting under this replica's claim and committed; the
	// first period is charged with no transaction open.
	c := m.claim(now)
	stored, inserted, err := m.store.InsertStarting(ctx, r, c)
	if err != nil {
		return rental.Rental{}, false, err
	}
	if !inserted {
		return m.existingStart(ctx, stored, req)
	}
	started, err := m.completeStart(ctx, stored, c)
	if err != nil {
		return rental.Rental{}, false, err
	}
	m.logger.InfoContext(ctx, "rental started", "instance_id", r.InstanceID, "org_id", r.OrgID, "instance_type", r.InstanceType,
		"hourly_price", r.HourlyPrice.Display(), "currency", r.Currency, "period", r.Period.String())
	return started, false, nil
}

// existingStart decides what a start of an instance that already has a rental returns. A rental
// still starting whose claim has lapsed (its start failed or its replica died) is completed now.
func (m *Meter) existingStart(ctx context.Context, r rental.Rental, req StartRequest) (rental.Rental, bool, error) {
	if r.State != rental.StateStarting || r.OrgID != req.OrgID || r.InstanceType != req.InstanceType {
		return matchExisting(r, req)
	}
	started, err := m.resumeStart(ctx, r.InstanceID)
	if err != nil {
		return rental.Rental{}, false, err
	}
	return matchExisting(started, req)
}

// resumeStart completes the start of a starting rental whose claim has lapsed; while another
// claim holds it, the start is still being decided there (rental.ErrStarting).
func (m *Meter) resumeStart(ctx context.Context, instanceID string) (rental.Rental, error) {
	c := m.claim(m.now())
	r, ok, err := m.store.ClaimStart(ctx, instanceID, c)
	if err != nil {
		return rental.Rental{}, err
	}
	if !ok {
		cur, err := m.store.Lookup(ctx, instanceID)
		switch {
		case errors.Is(err, rental.ErrNotFound):
			return rental.Rental{}, fmt.Errorf("%w: the start of instance %q was refused", rental.ErrNotFound, instanceID)
		case err != nil:
			return rental.Rental{}, err
		case cur.State != rental.StateStarting:
			return cur, nil
		}
		return rental.Rental{}, fmt.Errorf("%w: instance %q; retry", rental.ErrStarting, instanceID)
	}
	return m.completeStart(ctx, r, c)
}

// completeStart charges the first period (and any due since) of a starting rental claimed with
// c, then records the outcome: the rental runs, or it is removed when the ledger refuses the
// first period (rental.ErrInsufficientCredits or rental.ErrChargeRefused). When the ledger's
// answer is unknown (it is unavailable or timed out), the rental stays starting: the retry of
// the start, a stop or the scheduler completes it, replaying the same debit.
func (m *Meter) completeStart(ctx context.Context, r rental.Rental, c store.Claim) (rental.Rental, error) {
	cctx, cancel := m.callContext(ctx)
	out, cerr := m.charge(cctx, r, c.Horizon)
	cancel()
	rec := m.settle(r, out, cerr, c.Horizon)
	recorded, err := m.store.Record(ctx, c.Horizon, c.Token, []store.Record{rec})
	if err != nil {
		return rental.Rental{}, fmt.Errorf("recording the start of %q: %w", r.InstanceID, err)
	}
	if !recorded[0] {
		// The lease ran out and another replica took the start over: its record stands.
		m.logger.WarnContext(ctx, "start taken over by another replica", "instance_id", r.InstanceID)
		cur, err := m.store.Lookup(ctx, r.InstanceID)
		switch {
		case errors.Is(err, rental.ErrNotFound):
			return rental.Rental{}, fmt.Errorf("%w: first period of instance %q", rental.ErrInsufficientCredits, r.InstanceID)
		case err != nil:
			return rental.Rental{}, err
		case cur.State == rental.StateStarting:
			return rental.Rental{}, fmt.Errorf("%w: instance %q; retry", rental.ErrStarting, r.InstanceID)
		}
		return cur, nil
	}
	switch {
	case rec.Delete && cerr != nil:
		return rental.Rental{}, cerr
	case rec.Delete:
		return rental.Rental{}, fmt.Errorf("%w: first period of instance %q", rental.ErrInsufficientCredits, r.InstanceID)
	case rec.After.State == rental.StateStarting:
		return rental.Rental{}, fmt.Errorf("the start of instance %q is pending, retry: %w", r.InstanceID, cerr)
	}
	signal(m.sequence)
	signal(m.kick)
	return rec.After, nil
}

// settle decides what to record for rental r after charging it at now: the outcome applied with
// its events, or the removal of a rental whose start the ledger refused. A failed charge keeps
// the rental from being claimed again for a poll interval.
func (m *Meter) settle(r rental.Rental, out rental.Outcome, err error, now time.Time) store.Record {
	if r.StartRefused(out) || (r.State == rental.StateStarting && len(out.Charges) == 0 && errors.Is(err, rental.ErrChargeRefused)) {
		return store.Record{After: r, Delete: true}
	}
	after, events := r.Transition(out, now)
	rec := store.Record{After: after, Charges: out.Charges, Events: events,
		Notice: out.Suspended && r.Charging() && after.State == rental.StateSuspended}
	if err != nil {
		rec.RetryAt = now.Add(m.cfg.PollInterval)
	}
	return rec
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
// (the scheduler was behind) are charged; nothing later ever is. The stop itself is committed
// first (with a claim when periods are owed), then the owed periods are charged with no
// transaction open and recorded; if that fails, the stop stands and the scheduler charges them.
func (m *Meter) Stop(ctx context.Context, instanceID string) (rental.Rental, error) {
	if err := ids.ID("instance_id", instanceID); err != nil {
		return rental.Rental{}, fmt.Errorf("%w: %w", rental.ErrInvalid, err)
	}
	cur, err := m.store.Lookup(ctx, instanceID)
	if err != nil {
		return rental.Rental{}, err
	}
	if cur.State == rental.StateStarting {
		// Its start is in doubt: decide it first, as a start followed by this stop.
		if _, err := m.resumeStart(ctx, instanceID); err != nil {
			if errors.Is(err, rental.ErrInsufficientCredits) || errors.Is(err, rental.ErrChargeRefused) {
				return rental.Rental{}, fmt.Errorf("%w: instance %q never started: %w", rental.ErrNotFound, instanceID, err)
			}
			return rental.Rental{}, err
		}
	}
	now := m.now()
	c := m.claim(now)
	owes := false
	r, err := m.store.UpdateRental(ctx, instanceID, func(cur rental.Rental, held store.Held) (*store.Change, error) {
		switch cur.State {
		case rental.StateStarting:
			return nil, fmt.Errorf("%w: instance %q; retry", rental.ErrStarting, instanceID)
		case rental.StateStopped:
			return nil, nil
		}
		at := now
		if held.Live(now) && !held.Horizon.Before(at) {
			// A replica is charging up to its horizon (a clock ahead of ours): stop after it,
			// so that nothing it charges starts after the stop.
			at = held.Horizon.Add(time.Microsecond)
		}
		stopped, events := cur.Stop(at, now)
		change := &store.Change{After: stopped, Events: events}
		if owes = !stopped.NextPeriodAt().IsZero(); owes {
			// Take the rental over: a scheduler's claim on it is fenced out, and its debits are
			// the same keys as ours, replayed by the ledger.
			c.Horizon = at
			change.Claim = &c
		}
		return change, nil
	})
	if err != nil || !owes {
		if err == nil {
			signal(m.sequence)
		}
		return r, err
	}
	cctx, cancel := m.callContext(ctx)
	out, cerr := m.charge(cctx, r, c.Horizon)
	cancel()
	if cerr != nil {
		// The stop stands; the scheduler charges the rest.
		m.logger.WarnContext(ctx, "charging the last periods of a stopped rental failed", "instance_id", r.InstanceID, "err", cerr)
	}
	rec := m.settle(r, out, cerr, now)
	recorded, err := m.store.Record(ctx, now, c.Token, []store.Record{rec})
	if err != nil {
		return rental.Rental{}, fmt.Errorf("recording the last periods of %q: %w", instanceID, err)
	}
	signal(m.sequence)
	if !recorded[0] {
		return m.store.Get(ctx, instanceID)
	}
	return rec.After, nil
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
	if err := ids.ID("instance_id", instanceID); err != nil {
		return rental.Rental{}, fmt.Errorf("%w: %w", rental.ErrInvalid, err)
	}
	return m.store.Get(ctx, instanceID)
}

// List returns up to limit rentals of an organization, newest first, below beforeID when set.
func (m *Meter) List(ctx context.Context, orgID string, limit int, beforeID int64) ([]rental.Rental, error) {
	if err := ids.OrgID(orgID); err != nil {
		return nil, fmt.Errorf("%w: %w", rental.ErrInvalid, err)
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
	running := r.Charging()
	for i := range due {
		n := r.PeriodsCharged + i
		if r.PeriodPrice == 0 {
			m.metrics.periods.WithLabelValues(periodFree).Inc()
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
		case err == nil && grace:
			m.metrics.periods.WithLabelValues(periodGrace).Inc()
		case err == nil:
			m.metrics.periods.WithLabelValues(periodCharged).Inc()
		case errors.Is(err, ledgerclient.ErrKeyReused):
			m.metrics.periods.WithLabelValues(periodAlreadyCharged).Inc()
			// Charged before, by a transaction that did not commit its record (a crash or a
			// replica cut off mid-batch) with the other require_funds setting.
			m.logger.InfoContext(ctx, "period already charged", "instance_id", r.InstanceID, "period", n)
			txID = ""
		case errors.Is(err, rental.ErrInsufficientCredits) && running:
			out.Suspended, out.RefusedPeriod = true, n
			m.metrics.suspensions.WithLabelValues(suspendedForCredits).Inc()
			m.logger.InfoContext(ctx, "rental suspended for insufficient credits", "instance_id", r.InstanceID, "org_id", r.OrgID, "period", n)
			return out, nil
		default:
			m.metrics.periods.WithLabelValues(periodFailed).Inc()
			return out, fmt.Errorf("charging period %d of instance %s: %w", n, r.InstanceID, err)
		}
		out.Charges = append(out.Charges, rental.Charge{Period: n, Amount: r.PeriodPrice, TransactionID: txID, Grace: grace})
	}
	return out, nil
}

func (m *Meter) debit(ctx context.Context, r rental.Rental, n int64, requireFunds bool) (string, error) {
	txID, err := m.cfg.Ledger.Debit(ctx, ledgerclient.Debit{
		OrgID:          r.OrgID,
		Amount:         money.Money{Nanos: r.PeriodPrice, Currency: r.Currency},
		IdempotencyKey: rental.ChargeKey(r.InstanceID, n),
		Description:    r.ChargeDescription(n),
		Metadata:       r.ChargeMetadata(n),
		RequireFunds:   requireFunds,
	})
	return txID, chargeOutcome(err)
}

// chargeOutcome says what a ledger error means for a charge: the ledger refusing for the
// account's state (insufficient funds) is rental.ErrInsufficientCredits, any other definitive
// refusal but a reused key rental.ErrChargeRefused. A reused key (ledgerclient.ErrKeyReused:
// the period is charged already), an outage, a malformed reply and the caller's context pass
// through.
func chargeOutcome(err error) error {
	switch {
	case err == nil, errors.Is(err, ledgerclient.ErrKeyReused):
		return err
	case errors.Is(err, ledgerclient.ErrFailedPrecondition):
		return fmt.Errorf("%w: %w", rental.ErrInsufficientCredits, err)
	case errors.Is(err, ledgerclient.ErrRefused):
		return fmt.Errorf("%w: %w", rental.ErrChargeRefused, err)
	}
	return err
}

// withinGrace reports whether charging one more period leaves the organization at or above
// -Grace. Concurrent charges of the same organization may each pass this check, so the grace is
// a bound per period, not a hard floor.
func (m *Meter) withinGrace(ctx context.Context, r rental.Rental) (bool, error) {
	b, err := m.cfg.Ledger.Balance(ctx, r.OrgID)
	if err != nil {
		return false, fmt.Errorf("reading the balance for the grace: %w", err)
	}
	after, err := money.Add(b.Available, -r.PeriodPrice)
	if err != nil {
		return false, err
	}
	return after >= -m.cfg.Grace, nil
}
