package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// SpendLimitState is an organization's spend limit with its spending of the current UTC month.
type SpendLimitState struct {
	Limit    ledger.SpendLimit
	Currency string
	// Month is the first instant of the current UTC month; Spent what it was charged so far.
	Month time.Time
	Spent money.Nanos
	// Alerted says the alert has fired this month at the current limit.
	Alerted bool
}

func spendState(acct ledger.Account, now time.Time) SpendLimitState {
	month := ledger.MonthOf(now)
	return SpendLimitState{
		Limit: acct.Limit, Currency: acct.Currency, Month: month, Spent: acct.MonthSpend(now),
		Alerted: acct.Spend.Alerted && acct.Spend.Month.Equal(month),
	}
}

// SpendLimit reads an organization's spend limit and this month's spending from PostgreSQL.
func (a *App) SpendLimit(ctx context.Context, orgID string) (SpendLimitState, error) {
	if err := ledger.Invalid(ids.OrgID(orgID)); err != nil {
		return SpendLimitState{}, err
	}
	acct, _, err := a.store.Account(ctx, orgID)
	if err != nil {
		return SpendLimitState{}, err
	}
	return spendState(acct, a.cfg.Now()), nil
}

// SetSpendLimit replaces an organization's spend limit (limit.Amount 0 removes it) in currency
// ("" for the organization's). The change is committed with the account's new version and
// queued for the balance cache like any commit, so no Authorize answers from the old limit once
// this returns. A limit already passed by the month's spending fires its alert at once.
func (a *App) SetSpendLimit(ctx context.Context, orgID string, limit ledger.SpendLimit, currency string) (SpendLimitState, error) {
	if err := ledger.Invalid(ids.OrgID(orgID)); err != nil {
		return SpendLimitState{}, err
	}
	if err := ledger.ValidateSpendLimit(limit); err != nil {
		return SpendLimitState{}, err
	}
	if err := a.cfg.MaxRequestAmount.Check("limit", limit.Amount); err != nil && limit.Amount > 0 {
		// The limit is no request amount, but one beyond what any request may carry is a typo.
		return SpendLimitState{}, fmt.Errorf("%w: %w", ledger.ErrInvalid, err)
	}
	now := a.cfg.Now()
	var alerted bool
	acct, epoch, err := a.store.UpdateSpendLimit(ctx, orgID, currency, func(acct *ledger.Account) (*ledger.Event, bool, error) {
		if currency != "" && currency != acct.Currency {
			return nil, false, fmt.Errorf("%w: %s account, %s requested", ledger.ErrCurrencyMismatch, acct.Currency, currency)
		}
		alert, changed := ledger.SetSpendLimit(acct, limit, now)
		alerted = alert != nil
		return alert, changed, nil
	})
	if errors.Is(err, ledger.ErrOutcomeUnknown) && a.keeper != nil {
		a.keeper.invalidate(reasonCommitUnknown)
	}
	if err != nil {
		return SpendLimitState{}, err
	}
	if a.updater != nil {
		a.updater.submit(epoch, true, acct)
	}
	if alerted {
		a.wake.Notify()
	}
	return spendState(acct, now), nil
}
