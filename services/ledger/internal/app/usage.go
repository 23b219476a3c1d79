package app

import (
	"context"
	"errors"
	"time"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// usagePage is the number of outbox events the usage follower counts per transaction.
const usagePage = 5000

// followUsage keeps the daily usage table up to date with the outbox until ctx is done: a page
// of events at a time, each counted in the transaction that moves the usage cursor past it
// (store.UpdateUsage). It is off the Debit path: it polls every UsageInterval rather than waking
// on each commit, so under load it adds one small transaction per interval, not one per batch.
// At first start it reads the whole outbox once (the backfill of existing transactions).
func (a *App) followUsage(ctx context.Context) error {
	return loop.Every(ctx, "usage follower", a.cfg.UsageInterval, loop.Now, func(ctx context.Context) bool {
		page, err := a.store.UpdateUsage(ctx, usagePage, ledger.AggregateUsage)
		switch {
		case err != nil && ctx.Err() != nil:
			return false
		case errors.Is(err, ledger.ErrUnavailable):
			a.logger.DebugContext(ctx, "usage update failed, database unavailable", "err", err) // the committer reports outages
		case err != nil:
			a.logger.WarnContext(ctx, "usage update failed", "err", err)
		case !page.Busy:
			a.metrics.usageCounted.Add(float64(page.Events))
			a.metrics.usageCursor.Set(float64(page.LastSeq))
		}
		return err == nil && page.Events == usagePage // a full page: more to read, catching up
	})
}

// outboxSampleEvery is how often the outbox head and the usage follower's lag are read.
const outboxSampleEvery = time.Second

// sampleOutbox keeps tally_ledger_outbox_head, tally_ledger_outbox_head_timestamp_seconds and
// tally_ledger_usage_lag_events current until ctx is done: two small reads every
// outboxSampleEvery, off every request path.
func (a *App) sampleOutbox(ctx context.Context) error {
	return loop.Every(ctx, "outbox sampler", outboxSampleEvery, loop.Now, loop.Passes(func(ctx context.Context) {
		o, err := a.store.UsageCursor(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil:
			a.logger.DebugContext(ctx, "reading the outbox head failed", "err", err)
		default:
			a.metrics.outboxHead.Set(float64(o.Head))
			a.metrics.usageLag.Set(float64(o.Uncounted))
		}
		at, err := a.store.NewestEventTime(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil:
			a.logger.DebugContext(ctx, "reading the newest event's time failed", "err", err)
		case !at.IsZero():
			a.metrics.outboxHeadTime.Set(float64(at.UnixMicro()) / 1e6)
		}
	}))
}

// UsageSummary returns orgID's usage per UTC day over the last days (0: the default window),
// every day of the window present.
func (a *App) UsageSummary(ctx context.Context, orgID string, days int) (ledger.UsageSummary, error) {
	if err := ledger.Invalid(ids.OrgID(orgID)); err != nil {
		return ledger.UsageSummary{}, err
	}
	w, err := ledger.NewUsageWindow(days, a.cfg.Now())
	if err != nil {
		return ledger.UsageSummary{}, err
	}
	currency, rows, err := a.store.UsageRows(ctx, orgID, w.From, w.To)
	if err != nil {
		return ledger.UsageSummary{}, err
	}
	return ledger.SummarizeUsage(orgID, currency, w, rows), nil
}
