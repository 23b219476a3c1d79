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

// ProjectLimitState is one project's monthly limit with its charges of the current UTC month.
type ProjectLimitState struct {
	Project  string
	Limit    money.Nanos
	Spent    money.Nanos
	Currency string
}

// ProjectLimits lists an organization's per-project limits, read from PostgreSQL, with the
// current UTC month they count.
func (a *App) ProjectLimits(ctx context.Context, orgID string) (time.Time, []ProjectLimitState, error) {
	if err := ledger.Invalid(ids.OrgID(orgID)); err != nil {
		return time.Time{}, nil, err
	}
	acct, _, err := a.store.Account(ctx, orgID)
	if err != nil {
		return time.Time{}, nil, err
	}
	ps, err := a.store.ProjectLimits(ctx, orgID)
	if err != nil {
		return time.Time{}, nil, err
	}
	now := a.cfg.Now()
	out := make([]ProjectLimitState, 0, len(ps))
	for _, p := range ps {
		out = append(out, ProjectLimitState{Project: p.Project, Limit: p.Amount, Spent: p.MonthSpend(now), Currency: acct.Currency})
	}
	return ledger.MonthOf(now), out, nil
}

// SetProjectLimit sets (limit > 0) or removes (0) the monthly limit of one project, in currency
// ("" for the organization's). The batch reads the limits under the account's lock, so the next
// debit of the project decides with it; so does the next Authorize (the balance cache carries
// the project limits).
func (a *App) SetProjectLimit(ctx context.Context, orgID, project string, limit money.Nanos, currency string) (ProjectLimitState, error) {
	if err := ledger.Invalid(ids.OrgID(orgID)); err != nil {
		return ProjectLimitState{}, err
	}
	if err := ledger.ValidateProjectLimit(project, limit); err != nil {
		return ProjectLimitState{}, err
	}
	if err := a.cfg.MaxRequestAmount.Check("limit", limit); err != nil && limit > 0 {
		return ProjectLimitState{}, fmt.Errorf("%w: %w", ledger.ErrInvalid, err)
	}
	now := a.cfg.Now()
	acct, epoch, err := a.store.SetProjectLimit(ctx, orgID, project, limit, currency, now)
	if errors.Is(err, ledger.ErrOutcomeUnknown) && a.keeper != nil {
		a.keeper.invalidate(reasonCommitUnknown)
	}
	if err != nil {
		return ProjectLimitState{}, err
	}
	// Queued for the balance cache like any commit (the account's version changed with its
	// project limits), so no Authorize answers from the old limits once this returns.
	if a.updater != nil {
		a.updater.submit(epoch, true, acct)
	}
	st := ProjectLimitState{Project: project, Currency: acct.Currency}
	if p, ok := acct.Projects[project]; ok {
		st.Limit, st.Spent = p.Amount, p.MonthSpend(now)
	}
	return st, nil
}
