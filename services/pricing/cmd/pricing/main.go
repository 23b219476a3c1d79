// Command pricing runs tally's pricing service: tally.pricing.v1.PricingService on gRPC.
//
// Environment: DATABASE_URL (required), TALLY_PRICING_GRPC_ADDR (default :9092),
// TALLY_PRICING_METRICS_ADDR (default off), TALLY_PRICING_SEED_FILE (default: the embedded
// seed/catalog.yaml), TALLY_PRICING_POLL_INTERVAL (default 200ms), TALLY_JWT_SECRET,
// TALLY_JWKS_URL, TALLY_LOG_LEVEL.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/pricing/internal/app"
	"github.com/tallyhq/tally/services/pricing/internal/grpcapi"
	"github.com/tallyhq/tally/services/pricing/internal/store"
	"github.com/tallyhq/tally/services/pricing/migrations"
	"github.com/tallyhq/tally/services/pricing/seed"
)

// settings is the service's configuration, read from the environment.
type settings struct {
	databaseURL  string
	grpcAddr     string
	metricsAddr  string
	seedFile     string
	pollInterval time.Duration
	jwtSecret    string
	jwksURL      string
	logLevel     string
}

func readSettings() (settings, error) {
	e := config.FromOS()
	s := settings{
		databaseURL:  e.Required("DATABASE_URL"),
		grpcAddr:     e.String("TALLY_PRICING_GRPC_ADDR", ":9092"),
		metricsAddr:  e.String("TALLY_PRICING_METRICS_ADDR", ""),
		seedFile:     e.String("TALLY_PRICING_SEED_FILE", ""),
		pollInterval: e.Duration("TALLY_PRICING_POLL_INTERVAL", 200*time.Millisecond),
		jwtSecret:    e.String("TALLY_JWT_SECRET", "tally-dev-secret-change-me"),
		jwksURL:      e.String("TALLY_JWKS_URL", ""),
		logLevel:     e.String("TALLY_LOG_LEVEL", "info"),
	}
	if err := e.Err(); err != nil {
		return settings{}, err
	}
	if s.pollInterval > time.Second {
		return settings{}, fmt.Errorf("TALLY_PRICING_POLL_INTERVAL %s is above 1s: price changes must reach watchers within a second", s.pollInterval)
	}
	return s, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "pricing: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := readSettings()
	if err != nil {
		return err
	}
	logger := server.NewLogger(cfg.logLevel)

	pool, err := pg.Connect(ctx, cfg.databaseURL, "pricing", 8)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool, "pricing", migrations.FS); err != nil {
		return err
	}
	st, err := store.New(pool, nil)
	if err != nil {
		return err
	}
	a, err := app.New(app.Config{Store: st, Logger: logger, PollInterval: cfg.pollInterval})
	if err != nil {
		return err
	}
	seedData, seedSource := seed.Catalog, "embedded seed/catalog.yaml"
	if cfg.seedFile != "" {
		if seedData, err = os.ReadFile(cfg.seedFile); err != nil {
			return fmt.Errorf("reading TALLY_PRICING_SEED_FILE: %w", err)
		}
		seedSource = cfg.seedFile
	}
	if _, err := a.LoadSeed(ctx, seedData, seedSource); err != nil {
		return err
	}

	var verifier auth.Verifier
	if cfg.jwksURL != "" {
		verifier, err = auth.NewJWKSVerifier(ctx, cfg.jwksURL, nil, 0)
	} else {
		verifier, err = auth.NewHS256Verifier([]byte(cfg.jwtSecret))
	}
	if err != nil {
		return fmt.Errorf("building token verifier: %w", err)
	}
	srv, err := server.New(server.Config{Name: "pricing", Logger: logger, Verifier: verifier, Policy: grpcapi.Policy()})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.grpcAddr, err)
	}

	g, gctx := errgroup.WithContext(ctx)
	api, err := grpcapi.New(grpcapi.Config{App: a, Logger: logger, Shutdown: gctx})
	if err != nil {
		return err
	}
	api.Register(srv.GRPC())
	g.Go(func() error { return srv.Serve(gctx, lis) })
	g.Go(func() error { return server.ServeMetrics(gctx, cfg.metricsAddr, srv.Registry(), logger) })
	g.Go(func() error { return a.Run(gctx) })
	return g.Wait()
}
