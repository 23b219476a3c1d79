// Package app is the pricing service's use cases. It serves every read from an in-memory
// catalog that it keeps current by polling the catalog version in PostgreSQL, so a change made
// on any replica reaches every reader and every WatchCatalog stream within one poll interval.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/outbox"
	"github.com/tallyhq/tally/services/pricing/internal/pricing"
)

// Store is the persistence the app needs (implemented by store.Store).
type Store interface {
	Version(ctx context.Context) (int64, error)
	Load(ctx context.Context) (*catalog.Catalog, error)
	SetModelPrice(ctx context.Context, ch pricing.ModelChange, hash string) (catalog.ModelVersion, bool, error)
	SetInstancePrice(ctx context.Context, ch pricing.InstanceChange, hash string) (catalog.InstanceVersion, bool, error)
	Seed(ctx context.Context, seed pricing.Seed, source string) (bool, error)
}

// Config wires an App.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// PollInterval is how often the catalog version is checked in PostgreSQL (default 200ms); it
	// bounds how late a change made on another replica is seen.
	PollInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxRequestAmount bounds every price (TALLY_MAX_REQUEST_AMOUNT); the zero Limit is the
	// default maximum.
	MaxRequestAmount money.Limit
}

// App is the pricing service.
type App struct {
	cfg     Config
	current atomic.Pointer[catalog.Catalog]
	wake    *outbox.Broadcast
	// refreshMu keeps concurrent refreshes from replacing a newer catalog with an older one.
	refreshMu sync.Mutex
	metrics   *metrics
}

// New builds an App. Call Refresh once before serving, then Run.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("app: store and logger are required")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &App{cfg: cfg, wake: outbox.NewBroadcast()}
	a.metrics = newMetrics(func() float64 { return float64(a.Catalog().Version()) })
	empty, err := catalog.New(0, nil, nil)
	if err != nil {
		return nil, err
	}
	a.current.Store(empty)
	return a, nil
}

// Now returns the app's clock reading.
func (a *App) Now() time.Time { return a.cfg.Now() }

// Catalog returns the current catalog.
func (a *App) Catalog() *catalog.Catalog { return a.current.Load() }

// Refresh reloads the catalog when PostgreSQL holds a newer version.
func (a *App) Refresh(ctx context.Context) error {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	v, err := a.cfg.Store.Version(ctx)
	if err != nil {
		return err
	}
	if v <= a.Catalog().Version() {
		return nil
	}
	c, err := a.cfg.Store.Load(ctx)
	if err != nil {
		return err
	}
	a.current.Store(c)
	a.wake.Notify()
	a.cfg.Logger.InfoContext(ctx, "price catalog loaded", "catalog_version", c.Version())
	return nil
}

// Run polls for catalog changes until ctx is done.
func (a *App) Run(ctx context.Context) error {
	failing := false
	return loop.Every(ctx, "catalog poll", a.cfg.PollInterval, loop.AfterInterval, loop.Passes(func(ctx context.Context) {
		err := a.Refresh(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			a.cfg.Logger.WarnContext(ctx, "catalog refresh failed, serving the last catalog", "err", err)
			failing = true
		case err == nil && failing:
			a.cfg.Logger.InfoContext(ctx, "catalog refresh recovered")
			failing = false
		}
	}))
}

// Wait returns the current catalog as soon as its version is above after, or ctx's error.
func (a *App) Wait(ctx context.Context, after int64) (*catalog.Catalog, error) {
	for {
		wake := a.wake.Wait()
		if c := a.Catalog(); c.Version() > after {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// LoadSeed loads the seed catalog when the catalog has never been changed, and refreshes.
func (a *App) LoadSeed(ctx context.Context, data []byte, source string) (bool, error) {
	seed, err := pricing.ParseSeed(data)
	if err != nil {
		return false, fmt.Errorf("seed %s: %w", source, err)
	}
	loaded, err := a.cfg.Store.Seed(ctx, seed, source)
	if err != nil {
		return false, fmt.Errorf("loading seed %s: %w", source, err)
	}
	if loaded {
		a.cfg.Logger.InfoContext(ctx, "seed catalog loaded", "source", source, "models", len(seed.Models), "instance_types", len(seed.Instances))
	}
	return loaded, a.Refresh(ctx)
}

// SetModelPrice stores a new price version of a model and makes it visible on this replica
// before returning.
func (a *App) SetModelPrice(ctx context.Context, ch pricing.ModelChange) (catalog.ModelVersion, bool, error) {
	ch, hash, err := ch.Prepare(a.Now())
	if err != nil {
		return catalog.ModelVersion{}, false, err
	}
	if err := ch.CheckLimit(a.cfg.MaxRequestAmount); err != nil {
		return catalog.ModelVersion{}, false, err
	}
	v, replayed, err := a.cfg.Store.SetModelPrice(ctx, ch, hash)
	if err != nil {
		return catalog.ModelVersion{}, false, err
	}
	a.metrics.change(changeModel, replayed)
	a.afterChange(ctx, v.CatalogVersion, replayed, "model_id", v.ModelID, v.ID, ch.Audit)
	return v, replayed, nil
}

// SetInstancePrice stores a new price version of an instance type, like SetModelPrice.
func (a *App) SetInstancePrice(ctx context.Context, ch pricing.InstanceChange) (catalog.InstanceVersion, bool, error) {
	ch, hash, err := ch.Prepare(a.Now())
	if err != nil {
		return catalog.InstanceVersion{}, false, err
	}
	if err := ch.CheckLimit(a.cfg.MaxRequestAmount); err != nil {
		return catalog.InstanceVersion{}, false, err
	}
	v, replayed, err := a.cfg.Store.SetInstancePrice(ctx, ch, hash)
	if err != nil {
		return catalog.InstanceVersion{}, false, err
	}
	a.metrics.change(changeInstance, replayed)
	a.afterChange(ctx, v.CatalogVersion, replayed, "instance_type_id", v.InstanceTypeID, v.ID, ch.Audit)
	return v, replayed, nil
}

func (a *App) afterChange(ctx context.Context, version int64, replayed bool, idKey, id, versionID string, audit pricing.Audit) {
	if !replayed {
		a.cfg.Logger.InfoContext(ctx, "price changed", idKey, id, "version_id", versionID, "catalog_version", version,
			"actor", audit.Actor, "reason", audit.Reason)
	}
	// The change is committed; should this refresh fail, the poll picks it up.
	if err := a.Refresh(ctx); err != nil {
		a.cfg.Logger.WarnContext(ctx, "catalog refresh after a change failed", "err", err)
	}
}

// Quote prices usage of modelID at `at`, which must not lie more than a day ahead.
func (a *App) Quote(modelID string, usage catalog.Usage, at time.Time) (q catalog.Quote, err error) {
	defer func() { a.metrics.quote(err) }()
	if err := catalog.CheckUsageTime(at, a.Now()); err != nil {
		return catalog.Quote{}, err
	}
	return a.Catalog().Quote(modelID, usage, at)
}
