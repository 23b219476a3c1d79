package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// ReminderStore queues the expiry reminders that are due.
type ReminderStore interface {
	QueueExpiryReminders(ctx context.Context, now time.Time, window time.Duration, limit int, remind func(notify.Balance, []notify.Settings) []notify.Email) (orgs, queued int, err error)
}

// ExpiryReminders queues, every interval, one "credits expire soon" email per organization
// expiry date within window (7 days) and opted-in member (notify.ExpiryReminders). Every replica
// may run it: the store shares the due organizations with SKIP LOCKED and records each reminder
// in the transaction that queues it.
type ExpiryReminders struct {
	Store    ReminderStore
	Interval time.Duration
	Window   time.Duration
	Logger   *slog.Logger
	// Now is the business clock (nil: time.Now).
	Now func() time.Time
	// Queued is called after reminders were queued (to wake the sender); optional.
	Queued func()
}

// Run queues reminders until ctx is done.
func (r *ExpiryReminders) Run(ctx context.Context) error {
	if r.Store == nil || r.Logger == nil || r.Interval <= 0 || r.Window <= 0 {
		return errors.New("app: expiry reminders need a store, a logger, an interval and a window")
	}
	now := orNow(r.Now)
	return loop.Every(ctx, "expiry reminders", r.Interval, loop.Now, loop.Passes(func(ctx context.Context) {
		r.queueDue(ctx, now())
	}))
}

// queueDue queues every reminder due at now, a page of organizations at a time.
func (r *ExpiryReminders) queueDue(ctx context.Context, now time.Time) {
	for {
		const page = 100
		orgs, n, err := r.Store.QueueExpiryReminders(ctx, now, r.Window, page, notify.ExpiryReminders)
		if err != nil {
			if ctx.Err() == nil {
				r.Logger.WarnContext(ctx, "queueing expiry reminders failed", "err", err)
			}
			return
		}
		if n > 0 {
			r.Logger.InfoContext(ctx, "expiry reminders queued", "emails", n)
			if r.Queued != nil {
				r.Queued()
			}
		}
		if orgs < page {
			return
		}
	}
}
