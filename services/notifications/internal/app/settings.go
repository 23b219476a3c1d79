package app

import (
	"context"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Settings returns m's settings and the organization's latest known balance (nil when
// unknown). self says m is the caller, who is registered with the defaults when first seen;
// another member (read by ops) must exist already, else notify.ErrNotFound.
func (a *App) Settings(ctx context.Context, m notify.Member, self bool) (notify.Settings, *notify.Balance, error) {
	if self {
		return a.cfg.Store.EnsureSettings(ctx, m)
	}
	return a.cfg.Store.Settings(ctx, m.OrgID, m.MemberID)
}

// SettingsEdit is a member's change of their own preferences.
type SettingsEdit struct {
	// Apply returns the preferences with the requested fields changed.
	Apply func(notify.Preferences) notify.Preferences
	// TouchesAlert says the edit may turn on the low-credit alert or move its threshold, which
	// needs the organization's balance.
	TouchesAlert bool
}

// UpdateSettings applies edit to m's settings, validated against the organization's currency
// when known. Enabling the alert or moving its threshold while the balance is below it queues
// one alert (notify.ChangeSettings).
func (a *App) UpdateSettings(ctx context.Context, m notify.Member, edit SettingsEdit) (notify.Settings, *notify.Balance, error) {
	seed, err := a.seed(ctx, m.OrgID, edit)
	if err != nil {
		return notify.Settings{}, nil, err
	}
	now := a.cfg.Now()
	queued := false
	st, bal, err := a.cfg.Store.UpdateSettings(ctx, m, seed, func(before notify.Settings, bal *notify.Balance) (notify.Settings, []notify.Email, error) {
		p := edit.Apply(before.Preferences)
		orgCurrency := ""
		if bal != nil {
			orgCurrency = bal.Currency
		}
		if err := notify.ValidatePreferences(p, m.AccountEmail, orgCurrency); err != nil {
			return notify.Settings{}, nil, err
		}
		after, emails := notify.ChangeSettings(before, p, bal, now)
		queued = len(emails) > 0
		return after, emails, nil
	})
	if err != nil {
		return notify.Settings{}, nil, err
	}
	if queued {
		a.cfg.Queued()
	}
	return st, bal, nil
}

// seed reads the organization's balance from the ledger when the service has seen none of its
// events yet and the edit may turn on or re-evaluate the alert.
func (a *App) seed(ctx context.Context, orgID string, edit SettingsEdit) (*notify.Balance, error) {
	if !edit.TouchesAlert {
		return nil, nil
	}
	known, err := a.cfg.Store.OrgBalance(ctx, orgID)
	if err != nil || known != nil {
		return nil, err
	}
	b, err := a.cfg.Ledger.Balance(ctx, orgID)
	if err != nil || b.Currency == "" { // "": never credited, nothing to compare with
		return nil, err
	}
	return &b, nil
}

// ListDeliveries lists the delivery log newest first, as f selects.
func (a *App) ListDeliveries(ctx context.Context, f notify.DeliveryFilter) ([]notify.Delivery, error) {
	return a.cfg.Store.ListDeliveries(ctx, f)
}

// NotifyRentalSuspended queues the rental-suspended email of the organization's opted-in
// members and returns how many were new (0 when r.Key was seen before).
func (a *App) NotifyRentalSuspended(ctx context.Context, r notify.RentalSuspended) (int, error) {
	now := a.cfg.Now()
	n, err := a.cfg.Store.QueueRentalSuspended(ctx, r.OrgID, func(members []notify.Settings, bal *notify.Balance) []notify.Email {
		return notify.RentalSuspendedEmails(r, members, bal, now)
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		a.cfg.Queued()
	}
	return n, nil
}

// NotifyRechargeFailed queues the emails of a failed automatic recharge to the organization's
// known admins and the recipients payments names (notify.RechargeFailedEmails) and returns how
// many were new (0 on a retry).
func (a *App) NotifyRechargeFailed(ctx context.Context, r notify.RechargeFailed) (int, error) {
	known, err := a.cfg.Store.DirectoryMembers(ctx, r.OrgID, r.Recipients)
	if err != nil {
		return 0, err
	}
	n, err := a.cfg.Store.QueueEmails(ctx, notify.RechargeFailedEmails(r, known, a.cfg.Now()))
	if err != nil {
		return 0, err
	}
	if n > 0 {
		a.cfg.Queued()
	}
	return n, nil
}
