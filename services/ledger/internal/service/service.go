// Package service is the ledger's composition root: it assembles the service (store, cache,
// committer, sweeps, gRPC server) from its configuration. cmd/ledger runs it; the harness
// ledgertest starts real ledgers with it for the tests of the ledger and of its callers.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/config"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/internal/grpcapi"
	"github.com/tallyhq/tally/services/ledger/internal/shard"
	"github.com/tallyhq/tally/services/ledger/internal/store"
	"github.com/tallyhq/tally/services/ledger/internal/streamwindow"
	"github.com/tallyhq/tally/services/ledger/migrations"
)

// Config is the ledger's configuration; Load reads it from the environment.
type Config struct {
	GRPCAddr    string
	MetricsAddr string
	// DatabaseURL is the ledger's one PostgreSQL (shard "main") when Shards is empty.
	DatabaseURL string
	// Shards spread the ledger by organization over several PostgreSQL clusters
	// (TALLY_LEDGER_SHARDS; internal/shard); empty: DatabaseURL alone.
	Shards []shard.Shard
	// ShardMapRefresh is how often the shard map's overrides are read again (default 1s).
	ShardMapRefresh time.Duration
	// SkipMigrations starts without applying the migrations (TALLY_MIGRATE_ON_START=false): the
	// service then refuses to start unless `<binary> migrate` applied them all.
	SkipMigrations  bool
	RedisURL        string
	Auth            server.AuthConfig
	DefaultCurrency string
	CreditValidity  config.Period
	SweepInterval   time.Duration
	CommitMaxBatch  int
	CommitMaxWait   time.Duration
	CommitWorkers   int
	PlatformShards  int
	DBMaxConns      int32
	// MaxRequestAmount bounds the amount of every request (TALLY_MAX_REQUEST_AMOUNT); the zero
	// Limit is the default maximum.
	MaxRequestAmount money.Limit
	// PricingAddr is the pricing service followed for usage-priced debits (with the ledger's
	// own identity, service:ledger); empty refuses them.
	PricingAddr string
	// DBTimeout bounds every PostgreSQL call and is the server-side statement_timeout (default 5s).
	DBTimeout time.Duration
	// CommitRetryFor is how long a write batch is retried through a database outage (default 2s).
	CommitRetryFor time.Duration
	// RedisTimeout bounds every Redis call (default 50ms).
	RedisTimeout time.Duration
	// RedisReadTimeout bounds Authorize's cache reads (default 10ms, at most RedisTimeout); a
	// read past it falls back to PostgreSQL.
	RedisReadTimeout time.Duration
	// BalanceCacheTTL is how long a cache entry lives after its last write (default 60s).
	BalanceCacheTTL time.Duration
	// BalanceCacheQueue bounds the organizations waiting in the cache updater (default 65536).
	BalanceCacheQueue int
	// EpochInterval, EpochMaxAge and ReplicaTimeout tune the proof of cache freshness (defaults
	// 100ms, 250ms, 2s; see internal/app/freshness.go).
	EpochInterval  time.Duration
	EpochMaxAge    time.Duration
	ReplicaTimeout time.Duration
	// UsageInterval is how often the usage summary follows new events (default 250ms).
	UsageInterval time.Duration
	// AccessLogSample is how many OK calls of Authorize and Debit faster than
	// server.DefaultAccessLogSlow one access-log line stands for (TALLY_LEDGER_ACCESS_LOG_SAMPLE,
	// default 100; 1 logs every call; failed and slow calls are always logged).
	AccessLogSample int
	// StreamAckTarget is the mean receipt-to-acknowledgement time the DebitStream windows aim
	// at (TALLY_STREAM_ACK_TARGET, default 25ms; internal/streamwindow).
	StreamAckTarget time.Duration
	// Now is the business clock (credit validity and expiry, holds' TTLs, available balances,
	// usage windows and prices in force); time.Now when nil. Timeouts, retries, breakers and the
	// cache's freshness proof stay on real time.
	Now func() time.Time
}

// Load reads the configuration from e (see the README's configuration table).
func Load(e *config.Env) (Config, error) {
	c := Config{
		GRPCAddr:          e.String("TALLY_LEDGER_GRPC_ADDR", ":9091"),
		MetricsAddr:       e.String("TALLY_LEDGER_METRICS_ADDR", ""),
		DatabaseURL:       e.String("DATABASE_URL", ""),
		ShardMapRefresh:   e.Duration("TALLY_LEDGER_SHARD_MAP_REFRESH", time.Second),
		SkipMigrations:    !e.Bool("TALLY_MIGRATE_ON_START", true),
		RedisURL:          e.String("REDIS_URL", ""),
		Auth:              server.LoadAuthConfig(e),
		DefaultCurrency:   e.String("TALLY_DEFAULT_CURRENCY", "USD"),
		CreditValidity:    e.Period("TALLY_CREDIT_VALIDITY", config.Period{Months: 3}),
		SweepInterval:     e.Duration("TALLY_LEDGER_SWEEP_INTERVAL", time.Second),
		CommitMaxBatch:    e.Int("TALLY_COMMIT_MAX_BATCH", 256),
		CommitMaxWait:     e.Duration("TALLY_COMMIT_MAX_WAIT", 0),
		CommitWorkers:     e.Int("TALLY_COMMIT_WORKERS", 1),
		PlatformShards:    e.Int("TALLY_PLATFORM_SHARDS", 16),
		DBMaxConns:        int32(e.Int("TALLY_LEDGER_DB_MAX_CONNS", 20)),
		PricingAddr:       e.String("TALLY_PRICING_ADDR", "localhost:9092"),
		MaxRequestAmount:  e.MaxRequestAmount(),
		DBTimeout:         e.Duration("TALLY_LEDGER_DB_TIMEOUT", 5*time.Second),
		CommitRetryFor:    e.Duration("TALLY_COMMIT_RETRY_FOR", 2*time.Second),
		RedisTimeout:      e.Duration("TALLY_REDIS_TIMEOUT", 50*time.Millisecond),
		RedisReadTimeout:  e.Duration("TALLY_REDIS_READ_TIMEOUT", 10*time.Millisecond),
		BalanceCacheTTL:   e.Duration("TALLY_BALANCE_CACHE_TTL", time.Minute),
		BalanceCacheQueue: e.Int("TALLY_BALANCE_CACHE_QUEUE", 65536),
		EpochInterval:     e.Duration("TALLY_BALANCE_CACHE_EPOCH_INTERVAL", 100*time.Millisecond),
		EpochMaxAge:       e.Duration("TALLY_BALANCE_CACHE_EPOCH_MAX_AGE", 250*time.Millisecond),
		ReplicaTimeout:    e.Duration("TALLY_LEDGER_REPLICA_TIMEOUT", 2*time.Second),
		UsageInterval:     e.Duration("TALLY_LEDGER_USAGE_INTERVAL", 250*time.Millisecond),
		AccessLogSample:   e.Int("TALLY_LEDGER_ACCESS_LOG_SAMPLE", defaultAccessLogSample),
		StreamAckTarget:   e.Duration("TALLY_STREAM_ACK_TARGET", streamwindow.DefaultTarget),
	}
	shardsVar := e.String("TALLY_LEDGER_SHARDS", "")
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	if err := c.loadShards(shardsVar); err != nil {
		return Config{}, err
	}
	if !money.IsKnownCurrency(c.DefaultCurrency) {
		return Config{}, fmt.Errorf("TALLY_DEFAULT_CURRENCY: unknown currency %q", c.DefaultCurrency)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TALLY_LEDGER_DB_TIMEOUT", c.DBTimeout}, {"TALLY_COMMIT_RETRY_FOR", c.CommitRetryFor}, {"TALLY_REDIS_TIMEOUT", c.RedisTimeout},
		{"TALLY_REDIS_READ_TIMEOUT", c.RedisReadTimeout},
		{"TALLY_BALANCE_CACHE_TTL", c.BalanceCacheTTL}, {"TALLY_BALANCE_CACHE_EPOCH_INTERVAL", c.EpochInterval},
		{"TALLY_BALANCE_CACHE_EPOCH_MAX_AGE", c.EpochMaxAge}, {"TALLY_LEDGER_REPLICA_TIMEOUT", c.ReplicaTimeout},
		{"TALLY_LEDGER_USAGE_INTERVAL", c.UsageInterval}, {"TALLY_LEDGER_SHARD_MAP_REFRESH", c.ShardMapRefresh},
		{"TALLY_STREAM_ACK_TARGET", c.StreamAckTarget}} {
		if d.v <= 0 {
			return Config{}, fmt.Errorf("%s must be positive", d.name)
		}
	}
	if c.AccessLogSample <= 0 {
		return Config{}, errors.New("TALLY_LEDGER_ACCESS_LOG_SAMPLE must be positive (1 logs every call)")
	}
	if c.BalanceCacheQueue <= 0 {
		return Config{}, errors.New("TALLY_BALANCE_CACHE_QUEUE must be positive")
	}
	if c.EpochMaxAge <= c.EpochInterval || c.ReplicaTimeout <= c.EpochMaxAge {
		return Config{}, errors.New("the cache epoch needs TALLY_BALANCE_CACHE_EPOCH_INTERVAL < TALLY_BALANCE_CACHE_EPOCH_MAX_AGE < TALLY_LEDGER_REPLICA_TIMEOUT")
	}
	return c, nil
}

// loadShards sets Shards from the value of TALLY_LEDGER_SHARDS. With it, DATABASE_URL may be
// unset or name one of the shards (a deployment sharing one DATABASE_URL secret); without it,
// DATABASE_URL is required.
func (c *Config) loadShards(v string) error {
	if v == "" {
		if c.DatabaseURL == "" {
			return errors.New("DATABASE_URL is required (or TALLY_LEDGER_SHARDS)")
		}
		return nil
	}
	shards, err := shard.ParseShards(v)
	if err != nil {
		return fmt.Errorf("TALLY_LEDGER_SHARDS: %w", err)
	}
	if c.DatabaseURL != "" && !slices.ContainsFunc(shards, func(s shard.Shard) bool { return s.URL == c.DatabaseURL }) {
		return errors.New("DATABASE_URL is none of TALLY_LEDGER_SHARDS: unset it or make it one of them")
	}
	c.Shards = shards
	return nil
}

// shardList is the ledger's shards: Shards, or DatabaseURL as the one shard "main".
func (c Config) shardList() []shard.Shard {
	if len(c.Shards) > 0 {
		return c.Shards
	}
	return []shard.Shard{{Name: shard.Single, URL: c.DatabaseURL}}
}

// Migrate applies the service's migrations to every shard of cfg and returns: `<binary> migrate`,
// run before the replicas start when they skip migrating (SkipMigrations). With several shards
// it then pins every organization the hash would now put elsewhere (shard.Router.PinResidents).
func Migrate(ctx context.Context, cfg Config, logger *slog.Logger) error {
	shards := cfg.shardList()
	for _, sh := range shards {
		if err := pg.MigrateDatabase(ctx, sh.URL, "ledger", migrations.FS); err != nil {
			return fmt.Errorf("migrating shard %s: %w", sh.Name, err)
		}
	}
	if len(shards) == 1 {
		return nil
	}
	tel, err := telemetry.Start(ctx, "ledger")
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	cfg.SkipMigrations = true
	apps := map[string]*app.App{}
	for _, sh := range shards {
		st, closeDB, err := newStore(ctx, cfg, sh.URL, tel)
		if err != nil {
			return fmt.Errorf("shard %s: %w", sh.Name, err)
		}
		defer closeDB()
		a, err := app.New(app.Config{Store: st, Logger: logger})
		if err != nil {
			return err
		}
		apps[sh.Name] = a
	}
	return pinResidents(ctx, shards, apps, cfg, logger)
}

// pinResidents runs shard.Router.PinResidents over apps.
func pinResidents(ctx context.Context, shards []shard.Shard, apps map[string]*app.App, cfg Config, logger *slog.Logger) error {
	r, err := shard.NewRouter(shard.Config{Names: shardNames(shards), Apps: apps, Refresh: cfg.ShardMapRefresh, Logger: logger})
	if err != nil {
		return err
	}
	n, err := r.PinResidents(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		logger.InfoContext(ctx, "organizations pinned to their shard", "count", n)
	}
	return nil
}

func shardNames(shards []shard.Shard) []string {
	names := make([]string, len(shards))
	for i, s := range shards {
		names[i] = s.Name
	}
	return names
}

// defaultAccessLogSample is Config.AccessLogSample when unset.
const defaultAccessLogSample = 100

// accessLogSampling thins the access log of the per-call methods of model backends, Authorize and
// Debit, to one line per every OK fast calls: a line per call was a tenth of the CPU of a cached
// Authorize's handler (ledger-bench profile). DebitStream logs one line per stream, not
// per debit, and stays whole.
func accessLogSampling(every int) server.AccessLogSampling {
	if every <= 0 {
		every = defaultAccessLogSample
	}
	return server.AccessLogSampling{
		Methods: []string{ledgerv1.LedgerService_Authorize_FullMethodName, ledgerv1.LedgerService_Debit_FullMethodName},
		Every:   uint64(every),
	}
}

// Run serves the ledger on lis until ctx is done, then stops gracefully. The committer stops
// after the gRPC server: in-flight writes finish before shutdown completes.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	tel, err := telemetry.Start(ctx, "ledger")
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	authn, err := server.NewAuth(ctx, cfg.Auth, "ledger", logger)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Name: "ledger", Logger: logger, Auth: authn, Policy: grpcapi.Policy(), Errors: grpcapi.Errors, Telemetry: tel,
		AccessLog: accessLogSampling(cfg.AccessLogSample)})
	if err != nil {
		return err
	}
	// The Redis client reports a new server to the apps, which do not exist yet when the
	// client is made; nothing connects before the apps run, and an app's first act is a bump.
	var apps atomic.Pointer[map[string]*app.App]
	onNewServer := func() {
		if m := apps.Load(); m != nil {
			for _, a := range *m {
				a.RedisServerChanged()
			}
		}
	}
	rdb, closeRedis, err := newRedis(cfg, logger, tel, onNewServer)
	if err != nil {
		return err
	}
	defer closeRedis()
	watcher, closePricing, err := newPricer(cfg, authn, logger, tel)
	if err != nil {
		return err
	}
	defer closePricing()
	shards := cfg.shardList()
	multi := len(shards) > 1
	built, workers, closeDBs, err := newApps(ctx, cfg, shards, appDeps{srv: srv, rdb: rdb, watcher: watcher, logger: logger, tel: tel, onNewServer: onNewServer})
	defer closeDBs()
	if err != nil {
		return err
	}
	apps.Store(&built)
	router, err := shard.NewRouter(shard.Config{Names: shardNames(shards), Apps: built, Refresh: cfg.ShardMapRefresh, Logger: logger, Metrics: srv.Registry()})
	if err != nil {
		return err
	}
	if multi {
		if !cfg.SkipMigrations {
			if err := pinResidents(ctx, shards, built, cfg, logger); err != nil {
				return err
			}
		}
		// Serving starts with the overrides read: a fresh replica never routes by the hash alone.
		if err := router.Refresh(ctx); err != nil {
			return fmt.Errorf("reading the shard map: %w", err)
		}
		workers = append(workers, server.Worker{Name: "shard map", Run: router.Run})
	}
	// The streams' total window never drops below two commit batches: one fills while the
	// other commits.
	api, err := grpcapi.New(router, logger, streamwindow.Config{Target: cfg.StreamAckTarget, Min: 2 * cfg.CommitMaxBatch})
	if err != nil {
		return err
	}
	ledgerv1.RegisterLedgerServiceServer(srv.GRPC(), api)
	if watcher != nil {
		// Usage debits answer Unavailable until the first price list arrives; the ledger serves
		// amount debits meanwhile.
		workers = append(workers, server.Worker{Name: "following the price list", Run: func(ctx context.Context) error {
			if err := watcher.Run(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		}})
	}
	return server.Run(ctx, server.RunConfig{GRPC: srv, Listener: lis, MetricsAddr: cfg.MetricsAddr, Workers: workers, Logger: logger})
}

// appDeps are what every shard's app shares.
type appDeps struct {
	srv         *server.Server
	rdb         redis.UniversalClient
	watcher     *catalog.Watcher
	logger      *slog.Logger
	tel         *telemetry.Telemetry
	onNewServer func()
}

// newApps builds the app of every shard (its own pool, committer, outbox and cache namespace)
// and the workers that run them; closeDBs closes the pools opened, whatever the error.
func newApps(ctx context.Context, cfg Config, shards []shard.Shard, d appDeps) (_ map[string]*app.App, _ []server.Worker, closeDBs func(), _ error) {
	var closers []func()
	closeDBs = func() {
		for _, c := range closers {
			c()
		}
	}
	srv, rdb, watcher, logger, tel, onNewServer := d.srv, d.rdb, d.watcher, d.logger, d.tel, d.onNewServer
	multi := len(shards) > 1
	built := map[string]*app.App{}
	var workers []server.Worker
	for _, sh := range shards {
		st, closeDB, err := newStore(ctx, cfg, sh.URL, tel)
		if err != nil {
			return nil, nil, closeDBs, fmt.Errorf("shard %s: %w", sh.Name, err)
		}
		closers = append(closers, closeDB)
		// With several shards, each keeps its cache entries and metrics apart (a "shard" label).
		namespace, reg := "", prometheus.Registerer(srv.Registry())
		if multi {
			namespace, reg = sh.Name, prometheus.WrapRegistererWith(prometheus.Labels{"shard": sh.Name}, srv.Registry())
		}
		cache, err := newCache(cfg, rdb, namespace, onNewServer)
		if err != nil {
			return nil, nil, closeDBs, err
		}
		ac := appConfig(cfg, st, cache, watcher, logger, srv)
		ac.Metrics = reg
		if multi {
			ac.Logger = logger.With("shard", sh.Name)
		}
		if tel.Enabled() {
			ac.Tracer = tel.TracerProvider().Tracer("github.com/tallyhq/tally/services/ledger/internal/committer")
		}
		a, err := app.New(ac)
		if err != nil {
			return nil, nil, closeDBs, err
		}
		built[sh.Name] = a
		name := "ledger app"
		if multi {
			name += " " + sh.Name
		}
		workers = append(workers, server.Worker{Name: name, Run: a.Run, AfterServe: true})
	}
	return built, workers, closeDBs, nil
}

// newStore opens the ledger's database at url (one shard), migrates it and returns its store.
func newStore(ctx context.Context, cfg Config, url string, tel *telemetry.Telemetry) (*store.Store, func(), error) {
	dbTimeout := cfg.DBTimeout
	if dbTimeout <= 0 {
		dbTimeout = 5 * time.Second
	}
	pool, err := pg.Open(ctx, pg.Options{URL: url, Schema: "ledger", MaxConns: cfg.DBMaxConns, StatementTimeout: dbTimeout, ConnectTimeout: dbTimeout, Tracer: tel.PGTracer()})
	if err != nil {
		return nil, nil, err
	}
	if err := pg.Prepare(ctx, pool, "ledger", migrations.FS, !cfg.SkipMigrations); err != nil {
		pool.Close()
		return nil, nil, err
	}
	st, err := store.New(pool, store.Config{DefaultCurrency: cfg.DefaultCurrency, Timeout: dbTimeout})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return st, pool.Close, nil
}

// newRedis returns the Redis client of the balance cache, or nil without REDIS_URL.
func newRedis(cfg Config, logger *slog.Logger, tel *telemetry.Telemetry, onNewServer func()) (redis.UniversalClient, func(), error) {
	if cfg.RedisURL == "" {
		logger.Warn("REDIS_URL is not set: Authorize reads PostgreSQL on every call")
		return nil, func() {}, nil
	}
	rdb, err := balancecache.NewClient(balancecache.ClientConfig{URL: cfg.RedisURL, Timeout: cfg.RedisTimeout, OnNewServer: onNewServer, Telemetry: tel})
	if err != nil {
		return nil, nil, err
	}
	return rdb, func() { _ = rdb.Close() }, nil
}

// newCache returns the balance cache of one shard over rdb (keys in namespace), or nil without
// Redis.
func newCache(cfg Config, rdb redis.UniversalClient, namespace string, onNewServer func()) (*balancecache.Cache, error) {
	if rdb == nil {
		return nil, nil
	}
	return balancecache.New(rdb, balancecache.Config{TTL: cfg.BalanceCacheTTL, Timeout: cfg.RedisTimeout, ReadTimeout: cfg.RedisReadTimeout,
		OnNewServer: onNewServer, Namespace: namespace})
}

// newPricer returns the follower of the pricing service's price list, or nil without
// TALLY_PRICING_ADDR.
func newPricer(cfg Config, authn *server.Auth, logger *slog.Logger, tel *telemetry.Telemetry) (*catalog.Watcher, func(), error) {
	if cfg.PricingAddr == "" {
		return nil, func() {}, nil
	}
	conn, err := rpcclient.DialSource(cfg.PricingAddr, authn.Identity(), tel.DialOption())
	if err != nil {
		return nil, nil, err
	}
	watcher, err := catalog.NewWatcher(catalog.WatcherConfig{Client: pricingv1.NewPricingServiceClient(conn), Logger: logger})
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return watcher, func() { _ = conn.Close() }, nil
}

// appConfig is the app's configuration for cfg.
func appConfig(cfg Config, st *store.Store, cache *balancecache.Cache, watcher *catalog.Watcher, logger *slog.Logger, srv *server.Server) app.Config {
	c := app.Config{
		Store: st, Cache: cache, Logger: logger, Metrics: srv.Registry(),
		MaxBatch: cfg.CommitMaxBatch, MaxWait: cfg.CommitMaxWait, Workers: cfg.CommitWorkers, CommitRetryFor: cfg.CommitRetryFor,
		SweepInterval: cfg.SweepInterval, MaxRequestAmount: cfg.MaxRequestAmount,
		EpochInterval: cfg.EpochInterval, EpochMaxAge: cfg.EpochMaxAge, ReplicaTimeout: cfg.ReplicaTimeout, CacheQueue: cfg.BalanceCacheQueue,
		UsageInterval: cfg.UsageInterval, Now: cfg.Now, CreditValidity: cfg.CreditValidity, PlatformShards: cfg.PlatformShards,
	}
	if watcher != nil {
		c.Pricer = watcher
	}
	return c
}
