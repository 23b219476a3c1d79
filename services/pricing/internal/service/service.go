// Package service assembles the pricing service from its configuration: the composition root that
// cmd/pricing and the pricingtest harness share.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/services/pricing/internal/app"
	"github.com/tallyhq/tally/services/pricing/internal/grpcapi"
	"github.com/tallyhq/tally/services/pricing/internal/store"
	"github.com/tallyhq/tally/services/pricing/migrations"
	"github.com/tallyhq/tally/services/pricing/seed"
)

// Config is the pricing service's configuration.
type Config struct {
	DatabaseURL string
	// SkipMigrations starts without applying the migrations (TALLY_MIGRATE_ON_START=false): the
	// service then refuses to start unless `<binary> migrate` applied them all.
	SkipMigrations bool
	GRPCAddr       string
	MetricsAddr    string
	SeedFile       string // empty: the embedded seed/catalog.yaml
	PollInterval   time.Duration
	Auth           server.AuthConfig
	// MaxRequestAmount bounds every price (TALLY_MAX_REQUEST_AMOUNT); the zero Limit is the
	// default maximum.
	MaxRequestAmount money.Limit
	// Now is the business clock of the store and the app (when prices take effect, quotes'
	// "now"); time.Now when nil.
	Now func() time.Time
}

// Load reads the configuration from e (see the README's configuration table).
func Load(e *config.Env) (Config, error) {
	c := Config{
		DatabaseURL:      e.Required("DATABASE_URL"),
		SkipMigrations:   !e.Bool("TALLY_MIGRATE_ON_START", true),
		GRPCAddr:         e.String("TALLY_PRICING_GRPC_ADDR", ":9092"),
		MetricsAddr:      e.String("TALLY_PRICING_METRICS_ADDR", ""),
		SeedFile:         e.String("TALLY_PRICING_SEED_FILE", ""),
		PollInterval:     e.Duration("TALLY_PRICING_POLL_INTERVAL", 200*time.Millisecond),
		Auth:             server.LoadVerifierConfig(e),
		MaxRequestAmount: e.MaxRequestAmount(),
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	if c.PollInterval > time.Second {
		return Config{}, fmt.Errorf("TALLY_PRICING_POLL_INTERVAL %s is above 1s: price changes must reach watchers within a second", c.PollInterval)
	}
	return c, nil
}

// Migrate applies the service's migrations to the database of cfg and returns: `<binary> migrate`,
// run before the replicas start when they skip migrating (SkipMigrations).
func Migrate(ctx context.Context, cfg Config, _ *slog.Logger) error {
	return pg.MigrateDatabase(ctx, cfg.DatabaseURL, "pricing", migrations.FS)
}

// Run serves the pricing service on lis until ctx is done.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	tel, err := telemetry.Start(ctx, "pricing")
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	pool, err := pg.Open(ctx, pg.Options{URL: cfg.DatabaseURL, Schema: "pricing", MaxConns: 8, Tracer: tel.PGTracer()})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.Prepare(ctx, pool, "pricing", migrations.FS, !cfg.SkipMigrations); err != nil {
		return err
	}
	st, err := store.New(pool, cfg.Now)
	if err != nil {
		return err
	}
	a, err := app.New(app.Config{Store: st, Logger: logger, Now: cfg.Now, PollInterval: cfg.PollInterval, MaxRequestAmount: cfg.MaxRequestAmount})
	if err != nil {
		return err
	}
	seedData, seedSource := seed.Catalog, "embedded seed/catalog.yaml"
	if cfg.SeedFile != "" {
		if seedData, err = os.ReadFile(cfg.SeedFile); err != nil {
			return fmt.Errorf("reading TALLY_PRICING_SEED_FILE: %w", err)
		}
		seedSource = cfg.SeedFile
	}
	if _, err := a.LoadSeed(ctx, seedData, seedSource); err != nil {
		return err
	}
	authn, err := server.NewAuth(ctx, cfg.Auth, "pricing", logger)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Name: "pricing", Logger: logger, Auth: authn, Policy: grpcapi.Policy(), Errors: grpcapi.Errors, Telemetry: tel})
	if err != nil {
		return err
	}
	if err := a.RegisterMetrics(srv.Registry()); err != nil {
		return err
	}
	// shutdown ends the WatchCatalog streams as soon as the server starts stopping, so that its
	// graceful stop does not wait for streams that never end on their own.
	shutdown, endStreams := context.WithCancel(ctx)
	defer endStreams()
	api, err := grpcapi.New(grpcapi.Config{App: a, Shutdown: shutdown})
	if err != nil {
		return err
	}
	api.Register(srv.GRPC())
	return server.Run(ctx, server.RunConfig{
		GRPC: srv, Listener: lis, MetricsAddr: cfg.MetricsAddr, Logger: logger,
		Workers: []server.Worker{
			{Name: "catalog poller", Run: a.Run},
			{Name: "stream shutdown", Run: func(ctx context.Context) error {
				<-ctx.Done()
				endStreams()
				return ctx.Err()
			}},
		},
	})
}
