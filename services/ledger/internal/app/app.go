// Package app is the ledger service's use cases: writes through the group committer, the fast
// Authorize check through the Redis cache, reads, the event stream and the background sweeps.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/outbox"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/internal/committer"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/store"
)

// Config wires an App.
type Config struct {
	Store *store.Store
	// Cache may be nil: Authorize then reads PostgreSQL.
	Cache  *balancecache.Cache
	Logger *slog.Logger
	// Commit settings; see committer.Config.
	MaxBatch int
	MaxWait  time.Duration
	Workers  int
	// SweepInterval is how often expired holds and credits are swept (default 1s).
	SweepInterval time.Duration
	// EventPollInterval bounds how late a watcher sees another replica's events (default 250ms).
	EventPollInterval time.Duration
	Now               func() time.Time
	// Pricer prices usage-based debits; nil refuses them.
	Pricer Pricer
	// MaxRequestAmount bounds the amount of every write and Authorize (TALLY_MAX_REQUEST_AMOUNT;
	// the zero Limit is the default maximum).
	MaxRequestAmount money.Limit
}

// App is the ledger.
type App struct {
	cfg       Config
	store     *store.Store
	cache     *balancecache.Cache
	reader    *cacheReader
	logger    *slog.Logger
	committer *committer.GroupCommitter
	wake      *outbox.Broadcast
	// suspect holds organizations whose cache update failed: their cached entry may be stale
	// (say Redis came back with old data), so Authorize reads PostgreSQL until a write succeeds.
	suspectMu sync.Mutex
	suspect   map[string]bool
}

// New builds an App; Run starts its committer and sweeps.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("app: store and logger are required")
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.EventPollInterval <= 0 {
		cfg.EventPollInterval = 250 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &App{cfg: cfg, store: cfg.Store, cache: cfg.Cache, logger: cfg.Logger, wake: outbox.NewBroadcast(), suspect: map[string]bool{}}
	if cfg.Cache != nil {
		a.reader = newCacheReader(cfg.Cache)
	}
	gc, err := committer.New(committer.Config{
		Store:    cfg.Store,
		MaxBatch: cfg.MaxBatch,
		MaxWait:  cfg.MaxWait,
		Workers:  cfg.Workers,
		OnCommit: a.afterCommit,
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	a.committer = gc
	return a, nil
}

// Run runs the group committer and the sweeps until ctx is done.
func (a *App) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { a.sweep(ctx) })
	if a.reader != nil {
		wg.Go(func() { a.reader.run(ctx) })
	}
	err := a.committer.Run(ctx)
	wg.Wait()
	return err
}

func (a *App) afterCommit(ctx context.Context, applied store.Applied) {
	if a.cache != nil && len(applied.Accounts) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := a.cache.Set(cctx, applied.Accounts...)
		cancel()
		a.markCache(err, applied.Accounts...)
	}
	if applied.Events > 0 {
		a.wake.Notify()
	}
}

// Write applies one request through the group committer.
func (a *App) Write(ctx context.Context, req *ledger.Request) (ledger.Result, error) {
	if req.Usage != nil {
		if req.Amount != 0 {
			return ledger.Result{}, fmt.Errorf("%w: send either amount or usage, not both", ledger.ErrInvalid)
		}
		m, pricing, err := a.price(req.Usage)
		if err != nil {
			return ledger.Result{}, err
		}
		req.Amount, req.Currency, req.Pricing = m.Nanos, m.Currency, pricing
	}
	if err := req.Validate(); err != nil {
		return ledger.Result{}, err
	}
	if err := req.CheckLimit(a.cfg.MaxRequestAmount); err != nil {
		return ledger.Result{}, err
	}
	if err := req.CheckKeyNamespace(); err != nil {
		return ledger.Result{}, err
	}
	return a.committer.Submit(ctx, req)
}

// Balance reads an organization's account from PostgreSQL (the source of truth).
func (a *App) Balance(ctx context.Context, orgID string) (ledger.Account, error) {
	if err := ledger.ValidateOrgID(orgID); err != nil {
		return ledger.Account{}, err
	}
	acct, _, err := a.store.Account(ctx, orgID)
	return acct, err
}

// Authorization is the answer of Authorize.
type Authorization struct {
	Allowed   bool
	Available money.Nanos
	Currency  string
	// Amount is what was checked: the amount asked or the price of the usage estimate.
	Amount money.Nanos
}

// AuthorizeUsage is Authorize for an estimate of usage, priced like a usage debit.
func (a *App) AuthorizeUsage(ctx context.Context, orgID string, u *ledger.Usage) (Authorization, error) {
	m, _, err := a.price(u)
	if err != nil {
		return Authorization{}, err
	}
	if err := a.cfg.MaxRequestAmount.Check("the priced usage estimate", m.Nanos); err != nil {
		return Authorization{}, fmt.Errorf("%w: %w", ledger.ErrInvalid, err)
	}
	return a.Authorize(ctx, orgID, m.Nanos, m.Currency)
}

// Authorize says whether org can afford amount now. It reads the Redis cache; on a miss it
// rebuilds the entry from PostgreSQL, and when Redis is down it reads PostgreSQL: it never
// answers without a source.
func (a *App) Authorize(ctx context.Context, orgID string, amount money.Nanos, currency string) (Authorization, error) {
	if err := ledger.ValidateOrgID(orgID); err != nil {
		return Authorization{}, err
	}
	if amount < 0 {
		return Authorization{}, fmt.Errorf("%w: amount must not be negative", ledger.ErrInvalid)
	}
	if err := a.cfg.MaxRequestAmount.Check("amount", amount); err != nil {
		return Authorization{}, fmt.Errorf("%w: %w", ledger.ErrInvalid, err)
	}
	acct, err := a.cachedAccount(ctx, orgID)
	if err != nil {
		return Authorization{}, err
	}
	if currency != "" && acct.Currency != "" && currency != acct.Currency {
		return Authorization{}, fmt.Errorf("%w: %s account, %s requested", ledger.ErrCurrencyMismatch, acct.Currency, currency)
	}
	avail := acct.Available(a.cfg.Now())
	return Authorization{Allowed: avail >= amount, Available: avail, Currency: acct.Currency, Amount: amount}, nil
}

// markCache records whether the cache holds the latest state of accts.
func (a *App) markCache(err error, accts ...ledger.Account) {
	if err != nil {
		a.logger.Debug("balance cache update failed", "err", err)
	}
	a.suspectMu.Lock()
	defer a.suspectMu.Unlock()
	for _, acct := range accts {
		if err != nil {
			if len(a.suspect) < 1_000_000 {
				a.suspect[acct.OrgID] = true
			}
		} else if len(a.suspect) > 0 {
			delete(a.suspect, acct.OrgID)
		}
	}
}

func (a *App) isSuspect(orgID string) bool {
	a.suspectMu.Lock()
	defer a.suspectMu.Unlock()
	return a.suspect[orgID]
}

func (a *App) cachedAccount(ctx context.Context, orgID string) (ledger.Account, error) {
	if a.cache == nil {
		acct, _, err := a.store.Account(ctx, orgID)
		return acct, err
	}
	if !a.isSuspect(orgID) {
		acct, ok, err := a.reader.get(ctx, orgID)
		if err == nil && ok {
			return acct, nil
		}
		if err != nil {
			a.logger.Debug("balance cache unavailable, reading postgres", "err", err)
		}
	}
	acct, found, err := a.store.Account(ctx, orgID)
	if err != nil {
		return ledger.Account{}, err
	}
	if found {
		a.markCache(a.cache.Set(ctx, acct), acct)
	}
	return acct, nil
}

// Transactions lists an organization's transactions, newest first.
func (a *App) Transactions(ctx context.Context, orgID string, limit int, beforeSeq int64) ([]*ledger.Transaction, error) {
	if err := ledger.ValidateOrgID(orgID); err != nil {
		return nil, err
	}
	return a.store.ListTransactions(ctx, orgID, limit, beforeSeq)
}

// WatchEvents calls send for every event after afterSeq (of orgID when set), in sequence
// order, until ctx is done or send fails. It resumes from the outbox, so a reconnect with the
// last seen sequence loses and repeats nothing.
func (a *App) WatchEvents(ctx context.Context, afterSeq int64, orgID string, send func(ledger.Event) error) error {
	return outbox.Follow[ledger.Event]{
		Fetch: func(ctx context.Context, after int64, limit int) ([]ledger.Event, error) {
			return a.store.Events(ctx, after, orgID, limit)
		},
		Seq:  func(e ledger.Event) int64 { return e.Seq },
		Wake: a.wake,
		Poll: a.cfg.EventPollInterval,
	}.Run(ctx, afterSeq, send)
}

// sweep releases holds past their TTL and expires credits past their validity. Each is an
// ordinary ledger write that re-checks the state under the account lock, so replicas sweeping
// at once never expire anything twice.
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(a.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.SweepOnce(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("sweep failed", "err", err)
		}
	}
}

// SweepOnce runs one pass of both sweeps.
func (a *App) SweepOnce(ctx context.Context) error {
	now := a.cfg.Now()
	holds, err := a.store.DueHolds(ctx, now, 1000)
	if err != nil {
		return err
	}
	orgs, err := a.store.DueExpiries(ctx, now, 1000)
	if err != nil {
		return err
	}
	reqs := make([]*ledger.Request, 0, len(holds)+len(orgs))
	for _, id := range holds {
		reqs = append(reqs, &ledger.Request{Op: ledger.OpExpireHold, HoldID: id, Actor: "ledger"})
	}
	for _, org := range orgs {
		reqs = append(reqs, &ledger.Request{Op: ledger.OpExpireCredits, OrgID: org, Actor: "ledger"})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		wg.Go(func() { _, errs[i] = a.committer.Submit(ctx, r) })
	}
	wg.Wait()
	if n := len(holds) + len(orgs); n > 0 {
		a.logger.Info("sweep done", "holds_expired", len(holds), "orgs_expired", len(orgs))
	}
	return errors.Join(errs...)
}
