package app

import (
	"context"
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
// debit of the project decides with it.
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
	cur, err := a.store.SetProjectLimit(ctx, orgID, project, limit, currency, now)
	if err != nil {
		return ProjectLimitState{}, err
	}
	st := ProjectLimitState{Project: project, Currency: cur}
	if limit == 0 {
		return st, nil
	}
	_, all, err := a.ProjectLimits(ctx, orgID)
	if err != nil {
		return ProjectLimitState{}, err
	}
	for _, p := range all {
		if p.Project == project {
			return p, nil
		}
	}
	return ProjectLimitState{}, fmt.Errorf("project limit of %q not found after it was set", project)
}

// AuthorizeProject adds the project's monthly limit to an Authorize answer: an allowed amount
// that the project's limit does not allow is refused with ledger.ReasonSpendLimitReached. The
// project limits are read from PostgreSQL (the balance cache does not carry them).
func (a *App) AuthorizeProject(ctx context.Context, orgID, project string, res Authorization) (Authorization, error) {
	if project == "" || !res.Allowed {
		return res, nil
	}
	if len(project) > ledger.MaxProjectLength {
		return Authorization{}, fmt.Errorf("%w: project: at most %d bytes", ledger.ErrInvalid, ledger.MaxProjectLength)
	}
	ps, err := a.store.ProjectLimits(ctx, orgID)
	if err != nil {
		return Authorization{}, err
	}
	now := a.cfg.Now()
	for _, p := range ps {
		if p.Project == project && p.Check(now, res.Amount, res.Currency) != nil {
			res.Allowed, res.Reason = false, ledger.ReasonSpendLimitReached
		}
	}
	return res, nil
}
