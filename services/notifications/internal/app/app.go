// Package app holds the notifications use cases: member settings and the delivery log (settings.go),
// the ledger event follower (events.go), the expiry reminders (reminders.go) and the send loop
// (send.go). It is the only package that uses the store and the ledger; the rules it applies are
// the pure functions of package notify.
package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
)

// Store is the state the use cases read and change.
type Store interface {
	OrgBalance(ctx context.Context, orgID string) (*notify.Balance, error)
	EnsureSettings(ctx context.Context, m notify.Member) (notify.Settings, *notify.Balance, error)
	Settings(ctx context.Context, orgID, memberID string) (notify.Settings, *notify.Balance, error)
	UpdateSettings(ctx context.Context, m notify.Member, seed *notify.Balance, change store.SettingsChange) (notify.Settings, *notify.Balance, error)
	ListDeliveries(ctx context.Context, f notify.DeliveryFilter) ([]notify.Delivery, error)
	QueueRentalSuspended(ctx context.Context, orgID string, notice func(members []notify.Settings, bal *notify.Balance) []notify.Email) (int, error)
	QueueEmails(ctx context.Context, emails []notify.Email) (int, error)
	DirectoryMembers(ctx context.Context, orgID string, addresses []string) ([]notify.KnownMember, error)
}

// Balances reads an organization's balance from the ledger, for organizations whose events the
// service has not seen yet.
type Balances interface {
	Balance(ctx context.Context, orgID string) (notify.Balance, error)
}

// Config configures an App.
type Config struct {
	Store  Store
	Ledger Balances
	Logger *slog.Logger
	// Now is the business clock (nil: time.Now).
	Now func() time.Time
	// Queued is called after a call queued emails (to wake the sender); optional.
	Queued func()
}

// App runs the request use cases.
type App struct {
	cfg Config
}

// New checks cfg and returns an App.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.Ledger == nil || cfg.Logger == nil {
		return nil, errors.New("app: store, ledger and logger are required")
	}
	cfg.Now = orNow(cfg.Now)
	if cfg.Queued == nil {
		cfg.Queued = func() {}
	}
	return &App{cfg: cfg}, nil
}

func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
