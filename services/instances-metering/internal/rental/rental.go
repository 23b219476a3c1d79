// Package rental is the instances-metering domain: a rental of a dedicated instance, its billing
// periods, the charge of one period and the events a rental emits. It does no I/O.
//
// Billing rule: the hourly price in force when metering starts is locked for the rental. Period n
// covers [StartedAt + n×Period, StartedAt + (n+1)×Period) and is charged in full at its start,
// PeriodPrice = HourlyPrice × Period / 1h rounded up to the nano (money.MulDivCeil), with the
// ledger idempotency key "rental:<instance_id>:<n>".
package rental

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// Domain errors; grpcapi maps each to one status code.
var (
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: no rental for the instance (or not one of the caller's organization).
	ErrNotFound = errors.New("rental not found")
	// ErrConflict: the instance is already metered for another organization or instance type,
	// or the idempotency key was used with other parameters.
	ErrConflict = errors.New("instance already metered with other parameters")
	// ErrEnded: the instance's rental has ended; an instance id is metered once.
	ErrEnded = errors.New("the instance's rental has ended")
	// ErrInsufficientCredits: the organization cannot pay the period.
	ErrInsufficientCredits = errors.New("insufficient credits for the billing period")
	// ErrNotRentable: the instance type exists but cannot be rented now (unavailable, or no
	// price in force).
	ErrNotRentable = errors.New("instance type cannot be rented now")
	// ErrCatalogNotReady: no price catalog has been received from the pricing service yet.
	ErrCatalogNotReady = errors.New("price catalog not loaded yet")
	// ErrChargeRefused: the ledger refused a charge for a reason other than funds (such as an
	// account in another currency); retrying will not help.
	ErrChargeRefused = errors.New("the ledger refused the charge")
	// ErrStarting: the instance's start is still being decided (its first period is being
	// charged, or its outcome is unknown and will be completed); retry shortly.
	ErrStarting = errors.New("the instance's rental is still starting")
)

// Notifier reports a suspended rental to the organization (the notifications service). The
// idempotency key makes a notice sent twice one email.
type Notifier interface {
	RentalSuspended(ctx context.Context, orgID, instanceID, idempotencyKey, reason string) error
}

// State is the life cycle of a rental.
type State string

// States of a rental. A rental is starting from its insert until its first period is recorded;
// only the metering service itself sees it in that state.
const (
	StateStarting  State = "starting"
	StateRunning   State = "running"
	StateSuspended State = "suspended_insufficient_credits"
	StateStopped   State = "stopped"
)

// Rental is the metering of one rented instance.
type Rental struct {
	ID             int64
	InstanceID     string
	OrgID          string
	InstanceType   string
	PriceVersionID string
	HourlyPrice    money.Nanos
	Currency       string
	Period         time.Duration
	PeriodPrice    money.Nanos
	IdempotencyKey string
	State          State
	StartedAt      time.Time
	StoppedAt      time.Time // zero unless stopped
	SuspendedAt    time.Time // zero unless suspended
	PeriodsCharged int64
	TotalCharged   money.Nanos
}

// PeriodStart returns the start of period n. Periods are counted from StartedAt, never from the
// time a charge happened, so a late scheduler never makes the boundaries drift.
func (r *Rental) PeriodStart(n int64) time.Time {
	return r.StartedAt.Add(time.Duration(n) * r.Period)
}

// NextPeriodAt returns the start of the next period to charge, or zero when nothing more will be
// charged: a suspended rental, or a stopped one whose last started period is charged.
func (r *Rental) NextPeriodAt() time.Time {
	next := r.PeriodStart(r.PeriodsCharged)
	switch r.State {
	case StateStarting, StateRunning:
		return next
	case StateStopped:
		// A rental suspended before it stopped owes nothing more.
		if r.SuspendedAt.IsZero() && next.Before(r.StoppedAt) {
			return next
		}
	}
	return time.Time{}
}

// DuePeriods returns how many periods are due at now beyond those charged: for a running (or
// starting) rental every period started at or before now, for a stopped one every period started before the stop
// (periods the scheduler had not reached yet when it stopped), none for a suspended one.
func (r *Rental) DuePeriods(now time.Time) int64 {
	var until time.Time
	switch r.State {
	case StateStarting, StateRunning:
		until = now
	case StateStopped:
		if !r.SuspendedAt.IsZero() {
			return 0
		}
		until = r.StoppedAt.Add(-time.Nanosecond)
		if now.Before(until) {
			until = now
		}
	default:
		return 0
	}
	if until.Before(r.StartedAt) {
		return 0
	}
	started := int64(until.Sub(r.StartedAt)/r.Period) + 1
	return max(started-r.PeriodsCharged, 0)
}

// ChargeKey is the ledger idempotency key of period n: a retry after a crash replays the charge.
func ChargeKey(instanceID string, n int64) string {
	return "rental:" + instanceID + ":" + strconv.FormatInt(n, 10)
}

// ChargeDescription is the ledger description of period n; deterministic, so that a retry sends
// the same request.
func (r *Rental) ChargeDescription(n int64) string {
	return fmt.Sprintf("instance %s (%s), billing period %d", r.InstanceID, r.InstanceType, n)
}

// ChargeMetadata is the ledger metadata of period n.
func (r *Rental) ChargeMetadata(n int64) map[string]string {
	return map[string]string{"instance_id": r.InstanceID, "instance_type": r.InstanceType, "period": strconv.FormatInt(n, 10)}
}

// PeriodPrice returns what one period of length period costs at hourly: hourly × period / 1h,
// rounded up to the nano once (the platform's rounding rule).
func PeriodPrice(hourly money.Nanos, period time.Duration) (money.Nanos, error) {
	if period <= 0 {
		return 0, fmt.Errorf("%w: billing period must be positive", ErrInvalid)
	}
	return money.MulDivCeil(new(big.Rat).SetInt64(int64(period)), hourly, int64(time.Hour))
}

// Charge is one period charged through the ledger.
type Charge struct {
	Period        int64
	Amount        money.Nanos
	TransactionID string // empty when the ledger only reported the key as used
	// Grace says the period was charged into the grace allowance, below zero.
	Grace bool
}

// Outcome is what one charging pass did to a rental; it is recorded after the ledger calls, in
// the transaction that releases the rental's claim.
type Outcome struct {
	Charges []Charge
	// Suspended: the next period could not be paid.
	Suspended bool
	// RefusedPeriod is the period that could not be paid when Suspended.
	RefusedPeriod int64
}

// Charging reports whether r's periods are charged as a running rental's, requiring funds (or
// fitting the grace): a running rental, or a starting one (its first period decides the start).
func (r *Rental) Charging() bool { return r.State == StateRunning || r.State == StateStarting }

// StartRefused reports whether outcome o refuses the start of r: nothing could be charged and
// the first period could not be paid.
func (r *Rental) StartRefused(o Outcome) bool {
	return r.State == StateStarting && len(o.Charges) == 0 && o.Suspended
}

// Apply returns r after the outcome at now. A starting rental whose first period is paid runs.
func (r Rental) Apply(o Outcome, now time.Time) Rental {
	for _, c := range o.Charges {
		r.PeriodsCharged++
		r.TotalCharged += c.Amount
	}
	if r.State == StateStarting && len(o.Charges) > 0 {
		r.State = StateRunning
	}
	if o.Suspended && r.State == StateRunning {
		r.State = StateSuspended
		r.SuspendedAt = now
	}
	return r
}

// EventKind is the kind of a rental event.
type EventKind string

// Event kinds.
const (
	EventStarted       EventKind = "started"
	EventPeriodCharged EventKind = "period_charged"
	EventSuspended     EventKind = "suspended_insufficient_credits"
	EventStopped       EventKind = "stopped"
)

// Event is one committed change of a rental, from the outbox.
type Event struct {
	Seq           int64
	Kind          EventKind
	InstanceID    string
	OrgID         string
	InstanceType  string
	Period        int64
	Amount        money.Nanos
	Currency      string
	TransactionID string
	OccurredAt    time.Time
}

// Events returns the events of outcome o applied to r (as it was before) at now.
func (r *Rental) Events(o Outcome, now time.Time) []Event {
	base := Event{InstanceID: r.InstanceID, OrgID: r.OrgID, InstanceType: r.InstanceType, Currency: r.Currency, OccurredAt: now}
	out := make([]Event, 0, len(o.Charges)+1)
	for _, c := range o.Charges {
		e := base
		e.Kind, e.Period, e.Amount, e.TransactionID = EventPeriodCharged, c.Period, c.Amount, c.TransactionID
		out = append(out, e)
	}
	if o.Suspended && r.Charging() {
		e := base
		e.Kind, e.Period, e.Amount = EventSuspended, o.RefusedPeriod, r.PeriodPrice
		out = append(out, e)
	}
	return out
}

// Transition returns r after outcome o at now with the events of the change, in order: STARTED
// when a starting rental's first period is paid, one PERIOD_CHARGED per charge, SUSPENDED when a
// period cannot be paid, and STOPPED when a stopped rental is left owing nothing more.
func (r Rental) Transition(o Outcome, now time.Time) (Rental, []Event) {
	after := r.Apply(o, now)
	var events []Event
	if r.State == StateStarting && after.State != StateStarting {
		events = append(events, r.Event(EventStarted, now))
	}
	events = append(events, r.Events(o, now)...)
	if r.State == StateStopped && !r.NextPeriodAt().IsZero() && after.NextPeriodAt().IsZero() {
		events = append(events, after.Event(EventStopped, now))
	}
	return after, events
}

// Stop returns r stopped at at: it is charged nothing for periods starting at or after at. The
// STOPPED event comes with it when it owes nothing more, else with the record of its last
// periods (see Transition).
func (r Rental) Stop(at, now time.Time) (Rental, []Event) {
	r.State, r.StoppedAt = StateStopped, at
	if r.NextPeriodAt().IsZero() {
		return r, []Event{r.Event(EventStopped, now)}
	}
	return r, nil
}

// Event returns an event of kind about r at now.
func (r *Rental) Event(kind EventKind, now time.Time) Event {
	return Event{Kind: kind, InstanceID: r.InstanceID, OrgID: r.OrgID, InstanceType: r.InstanceType, Currency: r.Currency, OccurredAt: now}
}
