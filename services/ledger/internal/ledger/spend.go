package ledger

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// ErrSpendLimitReached refuses a request that would take an organization's spending of the
// month beyond the monthly spend limit its admins set: an Authorize, a Debit with require_funds
// or a Reserve. Debits for usage that already happened (no require_funds) and captures are still
// recorded, and counted.
var ErrSpendLimitReached = errors.New("the organization's monthly spend limit is reached")

// ReasonSpendLimitReached is the machine-readable reason of ErrSpendLimitReached (the
// google.rpc.ErrorInfo reason of the FailedPrecondition status, and the denial reason of
// Authorize), which a backend can show its user.
const ReasonSpendLimitReached = "SPEND_LIMIT_REACHED"

// EventSpendAlert is the outbox event of a crossing of the spend alert: committed with the
// charge that took the month's spending to the alert percentage of the limit (or with the limit
// change that put it there), once per month and limit. Its Amount is the month's spending.
const EventSpendAlert EventKind = "spend_alert"

// MaxAlertPercent bounds SpendLimit.AlertPercent.
const MaxAlertPercent = 100

// SpendLimit is an organization's monthly spend limit, in its account's currency.
type SpendLimit struct {
	// Amount caps the spending of a UTC calendar month; 0 means no limit.
	Amount money.Nanos
	// AlertPercent (1..100) of Amount is where the spend alert fires; 0 means no alert.
	AlertPercent int32
}

// Spend is what an organization was charged (debits and captures) in one UTC calendar month.
// The batch keeps it on the account row, in the same commit as the balance.
type Spend struct {
	// Month is the first instant of the UTC month Amount counts; zero before the first charge.
	Month time.Time
	// Amount is the month's charges; it saturates at the int64 maximum (far beyond any limit).
	Amount money.Nanos
	// Alerted says the spend alert has fired for Month at the current limit.
	Alerted bool
}

// MonthOf is the first instant of the UTC calendar month of t: spend limits count per UTC month.
func MonthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// MonthSpend is what the account was charged in the UTC month of now (zero in a month it was
// not charged yet).
func (a Account) MonthSpend(now time.Time) money.Nanos {
	if a.Spend.Month.Equal(MonthOf(now)) {
		return a.Spend.Amount
	}
	return 0
}

// SpendRemaining is what the spend limit still allows this month (zero once it is reached or
// passed); limited is false when the organization has no limit.
func (a Account) SpendRemaining(now time.Time) (remaining money.Nanos, limited bool) {
	if a.Limit.Amount <= 0 {
		return 0, false
	}
	return max(a.Limit.Amount-a.MonthSpend(now), 0), true // both are >= 0: no overflow
}

// CheckSpend refuses amount when the spend limit is reached or amount would take the month's
// spending beyond it.
func (a Account) CheckSpend(now time.Time, amount money.Nanos) error {
	remaining, limited := a.SpendRemaining(now)
	if !limited || (remaining > 0 && amount <= remaining) {
		return nil
	}
	return fmt.Errorf("%w: %s of the %s %s monthly limit spent this month (UTC), %s asked",
		ErrSpendLimitReached, a.MonthSpend(now).Display(), a.Limit.Amount.Display(), a.Currency, amount.Display())
}

// alertThreshold is AlertPercent of the limit, rounded up to the nano; ok is false without an
// alert. limit/100*p cannot overflow with p <= 100, nor can the rest.
func (l SpendLimit) alertThreshold() (money.Nanos, bool) {
	if l.Amount <= 0 || l.AlertPercent <= 0 {
		return 0, false
	}
	p := money.Nanos(l.AlertPercent)
	return l.Amount/100*p + (l.Amount%100*p+99)/100, true
}

// alertDue says whether the spend alert must fire now: the month's spending is at or past the
// threshold and the alert has not fired for this month and limit.
func (a Account) alertDue(now time.Time) bool {
	threshold, ok := a.Limit.alertThreshold()
	return ok && !a.Spend.Alerted && a.Spend.Month.Equal(MonthOf(now)) && a.Spend.Amount >= threshold
}

// addSpend counts a charge in the month of now, starting the month over when it is a new one.
func (a *Account) addSpend(now time.Time, amount money.Nanos) {
	if m := MonthOf(now); !a.Spend.Month.Equal(m) {
		a.Spend = Spend{Month: m}
	}
	sum, err := money.Add(a.Spend.Amount, amount)
	if err != nil {
		sum = math.MaxInt64
	}
	a.Spend.Amount = sum
}

// ValidateSpendLimit checks a limit an admin sets.
func ValidateSpendLimit(l SpendLimit) error {
	switch {
	case l.Amount < 0:
		return fmt.Errorf("%w: limit: must not be negative (0 removes the limit)", ErrInvalid)
	case l.AlertPercent < 0 || l.AlertPercent > MaxAlertPercent:
		return fmt.Errorf("%w: alert_percent: must be 0 (no alert) to %d", ErrInvalid, MaxAlertPercent)
	case l.Amount == 0 && l.AlertPercent != 0:
		return fmt.Errorf("%w: alert_percent: needs a limit", ErrInvalid)
	}
	return nil
}

// SetSpendLimit is the rule of an admin's change of the spend limit on the locked account: the
// limit is replaced; a new limit or percentage re-arms the alert of the month, which fires at
// once (the returned event) when the month's spending is already past it. changed is false when
// nothing changes (the account is then left as it was).
func SetSpendLimit(acct *Account, l SpendLimit, now time.Time) (alert *Event, changed bool) {
	if acct.Limit == l {
		return nil, false
	}
	acct.Limit = l
	acct.Spend.Alerted = false
	acct.Version++
	if acct.alertDue(now) {
		acct.Spend.Alerted = true
		e := spendAlertEvent(acct, now)
		return &e, true
	}
	return nil, true
}

// countSpend is the batch's part of the spend limit, after a charge of amount was booked on
// acct: the month's spending grows, and the alert fires once when it reaches the threshold.
func (b *Batch) countSpend(acct *Account, amount money.Nanos) {
	acct.addSpend(b.now, amount)
	if acct.alertDue(b.now) {
		acct.Spend.Alerted = true
		b.Events = append(b.Events, spendAlertEvent(acct, b.now))
	}
}

func spendAlertEvent(acct *Account, now time.Time) Event {
	return Event{
		OrgID:      acct.OrgID,
		Kind:       EventSpendAlert,
		Amount:     acct.Spend.Amount,
		Balance:    acct.Balance,
		Available:  acct.Available(now),
		Currency:   acct.Currency,
		ExpiresAt:  acct.ExpiresAt,
		OccurredAt: now,
		SpendLimit: acct.Limit.Amount,
	}
}
