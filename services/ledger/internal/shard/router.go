package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// Single is the name of the one shard of a ledger configured with DATABASE_URL alone. A ledger
// that grows to several shards keeps that database under this name, so the event cursors of
// its consumers ("main:<seq>") still resume.
const Single = "main"

// maxHops bounds how many residency fences one call follows (a move in flight answers "moved"
// at most once per shard it passed through).
const maxHops = 4

// Config configures a Router.
type Config struct {
	// Names are the shards in configuration order: the first is the directory, which keeps the
	// map's overrides. Apps holds the app of each.
	Names []string
	Apps  map[string]*app.App
	// Refresh is how often the overrides are read again (default 1s); a fence met on a write
	// teaches the router at once.
	Refresh time.Duration
	Logger  *slog.Logger
	// Metrics registers tally_ledger_watch_held_streams; optional (a router built only to
	// migrate has none).
	Metrics prometheus.Registerer
}

// Router serves the ledger's use cases over its shards: each call goes to the app of the shard
// its organization lives on. With one shard every call goes straight to its app.
type Router struct {
	cfg   Config
	names []string
	apps  map[string]*app.App
	dir   *app.App
	m     atomic.Pointer[Map]
	// one is the app when there is a single shard.
	one *app.App
	// held counts the WatchEvents streams held at a move's marker, by shard (watch.go).
	held *prometheus.GaugeVec
}

// NewRouter returns the router of cfg, its map without overrides until Refresh.
func NewRouter(cfg Config) (*Router, error) {
	if len(cfg.Names) == 0 || cfg.Logger == nil {
		return nil, errors.New("shard: names and logger are required")
	}
	for _, n := range cfg.Names {
		if cfg.Apps[n] == nil {
			return nil, fmt.Errorf("shard: no app for shard %q", n)
		}
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	m, err := NewMap(cfg.Names, nil)
	if err != nil {
		return nil, err
	}
	held, err := watchMetrics(cfg.Metrics, cfg.Names)
	if err != nil {
		return nil, err
	}
	r := &Router{cfg: cfg, names: cfg.Names, apps: cfg.Apps, dir: cfg.Apps[cfg.Names[0]], held: held}
	if len(cfg.Names) == 1 {
		r.one = r.dir
	}
	r.m.Store(m)
	return r, nil
}

// Map is the router's current shard map.
func (r *Router) Map() *Map { return r.m.Load() }

// Refresh reads the overrides from the directory shard.
func (r *Router) Refresh(ctx context.Context) error {
	if r.one != nil {
		return nil
	}
	ov, err := r.dir.Overrides(ctx)
	if err != nil {
		return err
	}
	m, err := NewMap(r.names, ov)
	if err != nil {
		return err
	}
	r.m.Store(m)
	return nil
}

// Run refreshes the overrides every Config.Refresh until ctx is done.
func (r *Router) Run(ctx context.Context) error {
	if r.one != nil {
		<-ctx.Done()
		return nil
	}
	return loop.Every(ctx, "shard map refresh", r.cfg.Refresh, loop.AfterInterval, loop.Passes(func(ctx context.Context) {
		if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.WarnContext(ctx, "reading the shard map overrides failed", "err", err)
		}
	}))
}

// learn records that org lives on shard s (a fence said so) until the next refresh.
func (r *Router) learn(org, s string) {
	for {
		old := r.m.Load()
		if old.Shard(org) == s || r.m.CompareAndSwap(old, old.WithOverride(org, s)) {
			return
		}
	}
}

// Now is the ledger's business clock.
func (r *Router) Now() time.Time { return r.dir.Now() }

// follow runs call on org's shard, and again on the shard a residency fence names, up to
// maxHops times.
func follow[T any](r *Router, org string, call func(*app.App) (T, error)) (T, error) {
	s := r.m.Load().Shard(org)
	for hop := 0; ; hop++ {
		v, err := call(r.apps[s])
		if to, ok := r.fencedTo(err, hop); ok {
			r.learn(org, to)
			s = to
			continue
		}
		return v, err
	}
}

// fencedTo is the shard a residency fence in err names, when the call at this hop may still
// follow it there.
func (r *Router) fencedTo(err error, hop int) (string, bool) {
	var moved *ledger.MovedError
	if hop+1 < maxHops && errors.As(err, &moved) && r.apps[moved.Shard] != nil {
		return moved.Shard, true
	}
	return "", false
}

// Write applies one request on its organization's shard; a request naming a hold goes to the
// shard of the hold's organization.
func (r *Router) Write(ctx context.Context, req *ledger.Request) (ledger.Result, error) {
	if r.one != nil {
		return r.one.Write(ctx, req)
	}
	org := req.OrgID
	if req.HoldID != "" {
		var err error
		if org, err = r.holdOrg(ctx, req.HoldID); err != nil {
			return ledger.Result{}, err
		}
	}
	return follow(r, org, func(a *app.App) (ledger.Result, error) {
		c := *req // the app prices usage into its request: every attempt starts from the caller's
		return a.Write(ctx, &c)
	})
}

// WriteAsync is Write without the wait, for streams (app.WriteAsync): the request goes to its
// organization's shard and, when a residency fence answers that the organization moved, again to
// the shard the fence names, up to maxHops times. A streamed request names an organization, never
// a hold.
func (r *Router) WriteAsync(ctx context.Context, req *ledger.Request, done func(ledger.Result, error)) {
	if r.one != nil {
		r.one.WriteAsync(ctx, req, done)
		return
	}
	r.writeAsyncOn(ctx, r.m.Load().Shard(req.OrgID), req, 0, done)
}

func (r *Router) writeAsyncOn(ctx context.Context, s string, req *ledger.Request, hop int, done func(ledger.Result, error)) {
	c := *req // the app prices usage into its request: every attempt starts from the caller's
	r.apps[s].WriteAsync(ctx, &c, func(res ledger.Result, err error) {
		if to, ok := r.fencedTo(err, hop); ok {
			r.learn(req.OrgID, to)
			// done runs on the committer's worker, which must not block on another queue.
			go r.writeAsyncOn(ctx, to, req, hop+1, done)
			return
		}
		done(res, err)
	})
}

// holdOrg finds the organization of hold id on any shard ("" when none has it: the write then
// goes to the directory, which answers that the hold is not found).
func (r *Router) holdOrg(ctx context.Context, id string) (string, error) {
	type found struct {
		org string
		ok  bool
		err error
	}
	res := make([]found, len(r.names))
	var wg sync.WaitGroup
	for i, n := range r.names {
		wg.Go(func() {
			org, ok, err := r.apps[n].HoldOrg(ctx, id)
			res[i] = found{org, ok, err}
		})
	}
	wg.Wait()
	var errs []error
	for _, f := range res {
		if f.ok {
			return f.org, nil
		}
		errs = append(errs, f.err)
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return "", nil
}

// Balance reads an organization's account on its shard (following a fence it finds there).
func (r *Router) Balance(ctx context.Context, org string) (ledger.Account, error) {
	if r.one != nil {
		return r.one.Balance(ctx, org)
	}
	return follow(r, org, func(a *app.App) (ledger.Account, error) {
		acct, err := a.Balance(ctx, org)
		if err == nil {
			err = acct.Resident()
		}
		if errors.Is(err, ledger.ErrFrozen) {
			err = nil // the balance as it stands: a frozen account is being moved in
		}
		return acct, err
	})
}

// SpendLimit is app.SpendLimit on org's shard.
func (r *Router) SpendLimit(ctx context.Context, org string) (app.SpendLimitState, error) {
	return r.appOf(org).SpendLimit(ctx, org)
}

// SetSpendLimit is app.SetSpendLimit on org's shard, following a residency fence.
func (r *Router) SetSpendLimit(ctx context.Context, org string, limit ledger.SpendLimit, currency string) (app.SpendLimitState, error) {
	if r.one != nil {
		return r.one.SetSpendLimit(ctx, org, limit, currency)
	}
	return follow(r, org, func(a *app.App) (app.SpendLimitState, error) {
		return a.SetSpendLimit(ctx, org, limit, currency)
	})
}

// Authorize is app.Authorize on org's shard (never an extra round trip: the map is in memory).
func (r *Router) Authorize(ctx context.Context, org, project string, amount money.Nanos, currency string) (app.Authorization, error) {
	return r.authorize(ctx, org, func(a *app.App) (app.Authorization, error) { return a.Authorize(ctx, org, project, amount, currency) })
}

// AuthorizeUsage is app.AuthorizeUsage on org's shard.
func (r *Router) AuthorizeUsage(ctx context.Context, org, project string, u *ledger.Usage) (app.Authorization, error) {
	return r.authorize(ctx, org, func(a *app.App) (app.Authorization, error) { return a.AuthorizeUsage(ctx, org, project, u) })
}

// authorize runs call on org's shard. A refusal there, with several shards, is checked against
// the residency fence (one read of the account): a replica whose map missed a move would
// otherwise refuse from the emptied source until its next refresh.
func (r *Router) authorize(ctx context.Context, org string, call func(*app.App) (app.Authorization, error)) (app.Authorization, error) {
	if r.one != nil {
		return call(r.one)
	}
	a := r.appOf(org)
	res, err := call(a)
	if err != nil || res.Allowed {
		return res, err
	}
	acct, aerr := a.Balance(ctx, org)
	if aerr != nil || acct.MovedTo == "" || r.apps[acct.MovedTo] == nil {
		return res, err
	}
	r.learn(org, acct.MovedTo)
	return call(r.apps[acct.MovedTo])
}

// Transactions lists org's transactions on its shard, where a move copied its history.
func (r *Router) Transactions(ctx context.Context, org string, limit int, beforeSeq int64, kind ledger.TxKind) ([]*ledger.Transaction, error) {
	return r.appOf(org).Transactions(ctx, org, limit, beforeSeq, kind)
}

// UsageSummary is app.UsageSummary on org's shard, where a move copied its usage.
func (r *Router) UsageSummary(ctx context.Context, org string, days int) (ledger.UsageSummary, error) {
	return r.appOf(org).UsageSummary(ctx, org, days)
}

func (r *Router) appOf(org string) *app.App {
	if r.one != nil {
		return r.one
	}
	return r.apps[r.m.Load().Shard(org)]
}
