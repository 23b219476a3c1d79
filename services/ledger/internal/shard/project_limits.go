package shard

import (
	"context"
	"time"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/app"
)

// ProjectLimits is app.ProjectLimits on org's shard.
func (r *Router) ProjectLimits(ctx context.Context, org string) (time.Time, []app.ProjectLimitState, error) {
	return r.appOf(org).ProjectLimits(ctx, org)
}

// SetProjectLimit is app.SetProjectLimit on org's shard, following a residency fence.
func (r *Router) SetProjectLimit(ctx context.Context, org, project string, limit money.Nanos, currency string) (app.ProjectLimitState, error) {
	if r.one != nil {
		return r.one.SetProjectLimit(ctx, org, project, limit, currency)
	}
	return follow(r, org, func(a *app.App) (app.ProjectLimitState, error) {
		return a.SetProjectLimit(ctx, org, project, limit, currency)
	})
}
