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

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/outbox"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/internal/committer"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/store"
)

// ErrShuttingDown is returned for writes submitted after shutdown began.
var ErrShuttingDown = committer.ErrClosed

// Config wires an App.
type Config struct {
	Store *store.Store
	// Cache may be nil: Authorize then reads PostgreSQL.
	Cache  *balancecache.Cache
	Logger *slog.Logger
	// Metrics registers the ledger's metrics (the server's registry); nil registers nothing.
	Metrics prometheus.Registerer
	// ReplicaID names this replica in the cache epoch's heartbeats (a new UUID when empty).
	ReplicaID string
	// EpochInterval is how often the replica reads the cache epoch (default 100ms); a reading
	// older than EpochMaxAge (default 250ms) proves nothing. ReplicaTimeout (default 2s) is how
	// long a replica may miss its heartbeats before the others presume it lost. See freshness.go.
	EpochInterval  time.Duration
	EpochMaxAge    time.Duration
	ReplicaTimeout time.Duration
	// CacheQueue bounds the organizations waiting in the cache updater (default 65536).
	CacheQueue int
	// CommitRetryFor is how long a batch is retried through a database outage (default 2s).
	CommitRetryFor time.Duration
	// Commit settings; see committer.Config.
	MaxBatch int
	MaxWait  time.Duration
	Workers  int
	// SweepInterval is how often expired holds and credits are swept (default 1s).
	SweepInterval time.Duration
	// EventPollInterval bounds how late a watcher sees another replica's events (default 250ms).
	EventPollInterval time.Duration
	// UsageInterval is how often the usage follower reads new events when it has caught up
	// (default 250ms): how late the usage summary may be.
	UsageInterval time.Duration
	// Now is the business clock (validity, expiry, holds' TTLs, usage windows); time.Now when nil.
	Now func() time.Time
	// Tracer gives each commit batch a span linked to its requests' (committer.Config.Tracer);
	// nil traces none.
	Tracer trace.Tracer
	// CreditValidity is how long credits stay valid (default 3 calendar months).
	CreditValidity config.Period
	// PlatformShards spreads each platform account over this many rows (default 16).
	PlatformShards int
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
	reader    *batchReader[cachedEntry]
	dbReader  *batchReader[dbAccount]
	updater   *cacheUpdater
	keeper    *epochKeeper
	metrics   *metrics
	logger    *slog.Logger
	committer *committer.GroupCommitter
	wake      *outbox.Broadcast
}

// withDefaults returns cfg with the default in place of each unset setting.
func (cfg Config) withDefaults() Config {
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.EventPollInterval <= 0 {
		cfg.EventPollInterval = 250 * time.Millisecond
	}
	if cfg.UsageInterval <= 0 {
		cfg.UsageInterval = 250 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = uuid.NewString()
	}
	if cfg.EpochInterval <= 0 {
		cfg.EpochInterval = 100 * time.Millisecond
	}
	if cfg.EpochMaxAge <= 0 {
		cfg.EpochMaxAge = 250 * time.Millisecond
	}
	if cfg.ReplicaTimeout <= 0 {
		cfg.ReplicaTimeout = 2 * time.Second
	}
	if cfg.CacheQueue <= 0 {
		cfg.CacheQueue = 65536
	}
	return cfg
}

// New builds an App; Run starts its committer and sweeps.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("app: store and logger are required")
	}
	cfg = cfg.withDefaults()
	if cfg.EpochMaxAge <= cfg.EpochInterval || cfg.ReplicaTimeout <= cfg.EpochMaxAge {
		return nil, errors.New("app: the cache epoch needs EpochInterval < EpochMaxAge < ReplicaTimeout")
	}
	a := &App{cfg: cfg, store: cfg.Store, cache: cfg.Cache, logger: cfg.Logger, wake: outbox.NewBroadcast()}
	m, err := newMetrics(cfg.Metrics, func() float64 {
		if a.updater == nil {
			return 0
		}
		return a.updater.queued()
	})
	if err != nil {
		return nil, err
	}
	a.metrics = m
	onUnknown := func() {}
	a.dbReader = newBatchReader(dbReadBatch, dbReadWorkers, a.readAccounts)
	if cfg.Cache != nil {
		a.reader = newBatchReader(cacheReadBatch, cacheReadWorkers, func(ctx context.Context, orgs []string) ([]cachedEntry, error) {
			entries, found, err := cfg.Cache.GetMany(ctx, orgs)
			if err != nil {
				return nil, err
			}
			out := make([]cachedEntry, len(orgs))
			for i := range orgs {
				out[i] = cachedEntry{entry: entries[i], found: found[i]}
			}
			return out, nil
		})
		a.keeper = newEpochKeeper(cfg.Store, cfg.ReplicaID, cfg.EpochInterval, cfg.EpochMaxAge, cfg.ReplicaTimeout, cfg.Logger, m)
		a.updater = newCacheUpdater(cfg.Cache, cfg.CacheQueue, a.keeper.invalidate, cfg.Logger, m)
		onUnknown = func() { a.keeper.invalidate(reasonCommitUnknown) }
	}
	batches, err := NewBatches(BatchesConfig{Store: cfg.Store, Now: cfg.Now, Validity: cfg.CreditValidity, PlatformShards: cfg.PlatformShards})
	if err != nil {
		return nil, err
	}
	gc, err := committer.New(committer.Config{
		Store:            measuredBatches{w: &m.writes, next: batches},
		MaxBatch:         cfg.MaxBatch,
		MaxWait:          cfg.MaxWait,
		Workers:          cfg.Workers,
		RetryFor:         cfg.CommitRetryFor,
		OnCommit:         a.afterCommit,
		OnUnknownOutcome: onUnknown,
		Logger:           cfg.Logger,
		Tracer:           cfg.Tracer,
	})
	if err != nil {
		return nil, err
	}
	a.committer = gc
	return a, nil
}

// Now is the ledger's business clock (Config.Now).
func (a *App) Now() time.Time { return a.cfg.Now() }

// Run runs the group committer, the sweeps and the cache's updater and epoch keeper until ctx
// is done. The cache's last states are written once nothing commits any more.
func (a *App) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { a.dbReader.run(ctx) })
	for _, background := range []func(context.Context) error{a.sweep, a.followUsage, a.sampleOutbox} {
		wg.Go(func() {
			if err := background(ctx); err != nil {
				a.logger.ErrorContext(ctx, "a background loop did not start", "err", err)
			}
		})
	}
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	var cacheWG sync.WaitGroup
	if a.cache != nil {
		wg.Go(func() { a.reader.run(ctx) })
		cacheWG.Go(func() { a.updater.run(cacheCtx) })
		cacheWG.Go(func() { a.keeper.run(cacheCtx) })
	}
	err := a.committer.Run(ctx)
	wg.Wait()
	stopCache()
	cacheWG.Wait()
	if a.cache != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if !a.updater.flush(fctx) {
			a.keeper.invalidate(reasonShutdownFailed)
		}
		a.keeper.leave(fctx)
	}
	return err
}

// RedisServerChanged tells the ledger that its Redis client reached another server than before
// (balancecache.ClientConfig.OnNewServer): every entry may be older than PostgreSQL.
func (a *App) RedisServerChanged() {
	if a.keeper != nil {
		a.keeper.invalidate(reasonRedisServer)
	}
}

// afterCommit runs after each commit, before the writers are answered: it queues the
// committed states for the cache (no Redis call on the commit path) and wakes event watchers.
func (a *App) afterCommit(_ context.Context, applied ledger.Applied) {
	if a.updater != nil && len(applied.Accounts) > 0 {
		a.updater.submit(applied.CacheEpoch, true, applied.Accounts...)
	}
	if applied.Events > 0 {
		a.wake.Notify()
	}
}

// Write applies one request through the group committer.
func (a *App) Write(ctx context.Context, req *ledger.Request) (ledger.Result, error) {
	res, err := a.write(ctx, req)
	a.metrics.observeWrite(req, res, err)
	return res, err
}

func (a *App) write(ctx context.Context, req *ledger.Request) (ledger.Result, error) {
	if err := a.prepare(req); err != nil {
		return ledger.Result{}, err
	}
	a.metrics.queueDepth.Inc()
	defer a.metrics.queueDepth.Dec()
	return a.committer.Submit(ctx, req)
}

// prepare prices a usage request and validates req, as every write is before it is queued.
func (a *App) prepare(req *ledger.Request) error {
	if req.Usage != nil {
		if req.Amount != 0 {
			return fmt.Errorf("%w: send either amount or usage, not both", ledger.ErrInvalid)
		}
		m, pricing, err := a.price(req.Usage)
		if err != nil {
			return err
		}
		req.Amount, req.Currency, req.Pricing = m.Nanos, m.Currency, pricing
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if err := req.CheckLimit(a.cfg.MaxRequestAmount); err != nil {
		return err
	}
	return req.CheckKeyNamespace()
}

// WriteAsync is Write without the wait, for streams: req is validated and priced exactly as
// Write does, then queued on the group committer; done is called once with the result Write
// would return, after req's batch committed (or with the refusal, at once). done runs on the
// committer's worker and must not block. WriteAsync itself blocks only while the committer's
// queue is full, or until ctx ends (done is then called with the context's error).
func (a *App) WriteAsync(ctx context.Context, req *ledger.Request, done func(ledger.Result, error)) {
	finish := func(res ledger.Result, err error) {
		a.metrics.observeWrite(req, res, err)
		done(res, err)
	}
	if err := a.prepare(req); err != nil {
		finish(ledger.Result{}, err)
		return
	}
	a.metrics.queueDepth.Inc()
	err := a.committer.Enqueue(ctx, req, func(o ledger.Outcome) {
		a.metrics.queueDepth.Dec()
		finish(o.Result, o.Err)
	})
	if err != nil {
		a.metrics.queueDepth.Dec()
		finish(ledger.Result{}, err)
	}
}

// Balance reads an organization's account from PostgreSQL (the source of truth).
func (a *App) Balance(ctx context.Context, orgID string) (ledger.Account, error) {
	if err := ledger.Invalid(ids.OrgID(orgID)); err != nil {
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
	// Reason says why Allowed is false: ReasonInsufficientFunds or
	// ledger.ReasonSpendLimitReached; "" when allowed.
	Reason string
}

// ReasonInsufficientFunds is the denial reason of an Authorize whose amount is above the
// available credits.
const ReasonInsufficientFunds = "INSUFFICIENT_FUNDS"

// AuthorizeUsage is Authorize for an estimate of usage, priced like a usage debit.
func (a *App) AuthorizeUsage(ctx context.Context, orgID, project string, u *ledger.Usage) (Authorization, error) {
	m, _, err := a.price(u)
	if err != nil {
		return Authorization{}, err
	}
	if err := a.cfg.MaxRequestAmount.Check("the priced usage estimate", m.Nanos); err != nil {
		return Authorization{}, fmt.Errorf("%w: %w", ledger.ErrInvalid, err)
	}
	return a.Authorize(ctx, orgID, project, m.Nanos, m.Currency)
}

// Authorize says whether org can afford amount now, for project when it is set (the "project"
// metadata its debit will carry: that project's monthly limit is checked too). It answers from
// the Redis cache only with an entry it can prove fresh (see freshness.go) that holds what it
// checks — the project limits too when a project is named — else from PostgreSQL (rebuilding
// the entry): it never answers from a value older than what PostgreSQL held when the entry was
// checked, but for the writes in flight.
func (a *App) Authorize(ctx context.Context, orgID, project string, amount money.Nanos, currency string) (Authorization, error) {
	if err := ledger.Invalid(ids.OrgID(orgID)); err != nil {
		return Authorization{}, err
	}
	if len(project) > ledger.MaxProjectLength {
		return Authorization{}, fmt.Errorf("%w: project: at most %d bytes", ledger.ErrInvalid, ledger.MaxProjectLength)
	}
	if amount < 0 {
		return Authorization{}, fmt.Errorf("%w: amount must not be negative", ledger.ErrInvalid)
	}
	if err := a.cfg.MaxRequestAmount.Check("amount", amount); err != nil {
		return Authorization{}, fmt.Errorf("%w: %w", ledger.ErrInvalid, err)
	}
	acct, err := a.authorizedAccount(ctx, orgID, project != "")
	if err != nil {
		return Authorization{}, err
	}
	if currency != "" && acct.Currency != "" && currency != acct.Currency {
		return Authorization{}, fmt.Errorf("%w: %s account, %s requested", ledger.ErrCurrencyMismatch, acct.Currency, currency)
	}
	now := a.cfg.Now()
	avail := acct.Available(now)
	res := Authorization{Allowed: true, Available: avail, Currency: acct.Currency, Amount: amount}
	switch {
	case avail < amount:
		res.Allowed, res.Reason = false, ReasonInsufficientFunds
	case acct.CheckSpend(now, amount) != nil:
		// The month's spending and the limit come from the same proven-fresh state as the
		// balance (the entry carries both, and every change of either bumps its version).
		res.Allowed, res.Reason = false, ledger.ReasonSpendLimitReached
	case project != "" && acct.CheckProjectSpend(now, map[string]string{ledger.MetaProject: project}, amount) != nil:
		// So do the project limits: a state without all of them is never used for a project.
		res.Allowed, res.Reason = false, ledger.ReasonSpendLimitReached
	}
	return res, nil
}

// authorizedAccount returns the account Authorize decides on, and counts where it came from;
// with projects, one holding all its project limits.
func (a *App) authorizedAccount(ctx context.Context, orgID string, projects bool) (ledger.Account, error) {
	why := whyNoCache
	if a.cache != nil {
		acct, source, reason, err := a.fromCache(ctx, orgID)
		if err != nil {
			return ledger.Account{}, err
		}
		if source == sourceCache && projects && !acct.ProjectsComplete() {
			source, reason = sourceDB, whyProjectsUnknown
		}
		if source == sourceCache {
			a.metrics.authorize.WithLabelValues(sourceCache, reason).Inc()
			return acct, nil
		}
		why = reason
	}
	r, err := a.dbReader.get(ctx, orgID)
	if err != nil {
		return ledger.Account{}, err
	}
	a.metrics.authorize.WithLabelValues(sourceDB, why).Inc()
	if r.found && a.cache != nil {
		a.keeper.observe(r.epoch, r.sent)
		a.updater.submit(r.epoch, false, r.acct)
	}
	return r.acct, nil
}

// Batches of Authorize reads (see batchReader). One pipeline to Redis in flight at a time: the
// calls arriving meanwhile make up the next one. With two, each pipeline carried about one
// call (0.91 Redis commands per Authorize under 64 callers), so every call paid a round trip's
// syscalls in the ledger and in Redis; one in flight costs a call at most one more round trip
// (~0.1 ms on loopback) of waiting.
const (
	cacheReadBatch   = 128
	cacheReadWorkers = 1
	dbReadBatch      = 128
	dbReadWorkers    = 4
)

type cachedEntry struct {
	entry balancecache.Entry
	found bool
}

// dbAccount is an account read by Authorize's fallback, with the cache epoch read in the same
// statement and when that statement was sent.
type dbAccount struct {
	acct  ledger.Account
	found bool
	epoch int64
	sent  time.Time
}

func (a *App) readAccounts(ctx context.Context, orgs []string) ([]dbAccount, error) {
	sent := time.Now()
	accts, found, epoch, err := a.store.AccountsForCache(ctx, orgs)
	if err != nil {
		return nil, err
	}
	out := make([]dbAccount, len(orgs))
	for i := range orgs {
		out[i] = dbAccount{acct: accts[i], found: found[i], epoch: epoch, sent: sent}
	}
	return out, nil
}

// fromCache returns the cached account of org when it is proven fresh (source cache), or the
// reason it is not (source db).
func (a *App) fromCache(ctx context.Context, orgID string) (acct ledger.Account, source, reason string, err error) {
	if _, ok := a.keeper.current(); !ok {
		return ledger.Account{}, sourceDB, whyEpochUnknown, nil
	}
	// Looked up before the read as well as after: a write of this replica that lands in Redis
	// after the read was answered but before the lookup below leaves neither copy newer than
	// what the read returned, and the state taken here is the one it would have missed.
	before, hadBefore := a.updater.lookup(orgID)
	c, err := a.reader.get(ctx, orgID)
	switch {
	case err != nil && ctx.Err() != nil:
		return ledger.Account{}, "", "", ctx.Err()
	case err != nil:
		a.metrics.redisErrors.WithLabelValues(redisRead).Inc()
		a.logger.DebugContext(ctx, "balance cache unavailable, reading postgres", "err", err)
		return ledger.Account{}, sourceDB, whyCacheUnavailable, nil
	case !c.found:
		return ledger.Account{}, sourceDB, whyMiss, nil
	}
	e := c.entry
	// This replica's own newest state wins over an older entry: it is committed, and Redis may
	// not have it yet.
	why := whyFresh
	if hadBefore && newer(before, e) {
		e, why = before, whyPending
	}
	if p, ok := a.updater.lookup(orgID); ok && newer(p, e) {
		e, why = p, whyPending
	}
	// Judged now that the answer is in: the reading must still be recent and unchanged.
	epoch, ok := a.keeper.current()
	switch {
	case !ok:
		return ledger.Account{}, sourceDB, whyEpochUnknown, nil
	case e.Epoch != epoch:
		return ledger.Account{}, sourceDB, whyStale, nil
	}
	return e.Account, sourceCache, why, nil
}

// Transactions lists an organization's transactions, newest first, of one kind when kind is set.
func (a *App) Transactions(ctx context.Context, orgID string, limit int, beforeSeq int64, kind ledger.TxKind) ([]*ledger.Transaction, error) {
	if err := ledger.Invalid(ids.OrgID(orgID)); err != nil {
		return nil, err
	}
	return a.store.ListTransactions(ctx, orgID, limit, beforeSeq, kind)
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
func (a *App) sweep(ctx context.Context) error {
	return loop.Every(ctx, "sweep", a.cfg.SweepInterval, loop.AfterInterval, loop.Passes(func(ctx context.Context) {
		if err := a.SweepOnce(ctx); err != nil && ctx.Err() == nil {
			a.logger.WarnContext(ctx, "sweep failed", "err", err)
		}
	}))
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
		a.logger.InfoContext(ctx, "sweep done", "holds_expired", len(holds), "orgs_expired", len(orgs))
	}
	return errors.Join(errs...)
}
