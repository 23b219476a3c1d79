// Package service assembles the ledger service (store, cache, committer, sweeps, gRPC server) from
// its configuration. cmd/ledger runs it; other services' tests and the benchmark start a real
// ledger with it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/config"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/internal/grpcapi"
	"github.com/tallyhq/tally/services/ledger/internal/store"
	"github.com/tallyhq/tally/services/ledger/migrations"
)

// Config is the ledger's configuration; Load reads it from the environment.
type Config struct {
	GRPCAddr        string
	MetricsAddr     string
	DatabaseURL     string
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
}

// Load reads the configuration from e (see the README's configuration table).
func Load(e *config.Env) (Config, error) {
	c := Config{
		GRPCAddr:         e.String("TALLY_LEDGER_GRPC_ADDR", ":9091"),
		MetricsAddr:      e.String("TALLY_LEDGER_METRICS_ADDR", ""),
		DatabaseURL:      e.Required("DATABASE_URL"),
		RedisURL:         e.String("REDIS_URL", ""),
		Auth:             server.LoadAuthConfig(e),
		DefaultCurrency:  e.String("TALLY_DEFAULT_CURRENCY", "USD"),
		CreditValidity:   e.Period("TALLY_CREDIT_VALIDITY", config.Period{Months: 3}),
		SweepInterval:    e.Duration("TALLY_LEDGER_SWEEP_INTERVAL", time.Second),
		CommitMaxBatch:   e.Int("TALLY_COMMIT_MAX_BATCH", 256),
		CommitMaxWait:    e.Duration("TALLY_COMMIT_MAX_WAIT", 0),
		CommitWorkers:    e.Int("TALLY_COMMIT_WORKERS", 1),
		PlatformShards:   e.Int("TALLY_PLATFORM_SHARDS", 16),
		DBMaxConns:       int32(e.Int("TALLY_LEDGER_DB_MAX_CONNS", 20)),
		PricingAddr:      e.String("TALLY_PRICING_ADDR", "localhost:9092"),
		MaxRequestAmount: e.MaxRequestAmount(),
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	if !money.IsKnownCurrency(c.DefaultCurrency) {
		return Config{}, fmt.Errorf("TALLY_DEFAULT_CURRENCY: unknown currency %q", c.DefaultCurrency)
	}
	return c, nil
}

// Run serves the ledger on lis until ctx is done, then stops gracefully.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	pool, err := pg.Connect(ctx, cfg.DatabaseURL, "ledger", cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool, "ledger", migrations.FS); err != nil {
		return err
	}
	st, err := store.New(pool, store.Config{Validity: cfg.CreditValidity, DefaultCurrency: cfg.DefaultCurrency, PlatformShards: cfg.PlatformShards})
	if err != nil {
		return err
	}
	var cache *balancecache.Cache
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("parsing REDIS_URL: %w", err)
		}
		// Fail fast when Redis is down: Authorize then reads PostgreSQL.
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.MaxRetries = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond, -1
		opts.PoolSize = 64
		rdb := redis.NewClient(opts)
		defer func() { _ = rdb.Close() }()
		cache = balancecache.New(rdb, 24*time.Hour)
	} else {
		logger.Warn("REDIS_URL is not set: Authorize reads PostgreSQL on every call")
	}
	authn, err := server.NewAuth(ctx, cfg.Auth, "ledger", logger)
	if err != nil {
		return err
	}
	var watcher *catalog.Watcher
	if cfg.PricingAddr != "" {
		conn, err := rpcclient.DialSource(cfg.PricingAddr, authn.Identity())
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		watcher, err = catalog.NewWatcher(catalog.WatcherConfig{Client: pricingv1.NewPricingServiceClient(conn), Logger: logger})
		if err != nil {
			return err
		}
	}
	appCfg := app.Config{
		Store: st, Cache: cache, Logger: logger,
		MaxBatch: cfg.CommitMaxBatch, MaxWait: cfg.CommitMaxWait, Workers: cfg.CommitWorkers,
		SweepInterval: cfg.SweepInterval, MaxRequestAmount: cfg.MaxRequestAmount,
	}
	if watcher != nil {
		appCfg.Pricer = watcher
	}
	a, err := app.New(appCfg)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Name: "ledger", Logger: logger, Auth: authn, Policy: grpcapi.Policy()})
	if err != nil {
		return err
	}
	api, err := grpcapi.New(a, logger)
	if err != nil {
		return err
	}
	ledgerv1.RegisterLedgerServiceServer(srv.GRPC(), api)

	g, gctx := errgroup.WithContext(ctx)
	appCtx, stopApp := context.WithCancel(context.WithoutCancel(ctx))
	g.Go(func() error { return srv.Serve(gctx, lis) })
	g.Go(func() error { return server.ServeMetrics(gctx, cfg.MetricsAddr, srv.Registry(), logger) })
	appDone := make(chan error, 1)
	go func() { appDone <- a.Run(appCtx) }()
	if watcher != nil {
		// Usage debits answer Unavailable until the first price list arrives; the ledger serves
		// amount debits meanwhile.
		g.Go(func() error {
			if err := watcher.Run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("following the price list: %w", err)
			}
			return nil
		})
	}
	err = g.Wait()
	// The committer stops after the server: in-flight writes finish before shutdown completes.
	stopApp()
	if aerr := <-appDone; aerr != nil && !errors.Is(aerr, context.Canceled) {
		err = errors.Join(err, aerr)
	}
	return err
}
