// Package service assembles the instances-metering service (store, ledger and pricing clients,
// scheduler, gRPC server) from its configuration: the composition root that
// cmd/instances-metering and the meteringtest harness share.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/config"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/services/instances-metering/internal/app"
	"github.com/tallyhq/tally/services/instances-metering/internal/grpcapi"
	"github.com/tallyhq/tally/services/instances-metering/internal/notifyclient"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
	"github.com/tallyhq/tally/services/instances-metering/internal/store"
	"github.com/tallyhq/tally/services/instances-metering/migrations"
)

// ServiceName is the service's identity toward the others (token subject service:instances-metering).
const ServiceName = "instances-metering"

// Config is the service's configuration; Load reads it from the environment.
type Config struct {
	GRPCAddr    string
	MetricsAddr string
	DatabaseURL string
	// SkipMigrations starts without applying the migrations (TALLY_MIGRATE_ON_START=false): the
	// service then refuses to start unless `<binary> migrate` applied them all.
	SkipMigrations bool
	DBMaxConns     int32
	Auth           server.AuthConfig
	LedgerAddr     string
	PricingAddr    string
	// NotificationsAddr, when set, receives suspension notices. The service calls the ledger,
	// pricing and notifications with its own identity, service:instances-metering (see Auth).
	NotificationsAddr string
	// BillingPeriod is the period of new rentals (default 1h).
	BillingPeriod time.Duration
	// Grace lets a rental run into a negative balance down to -Grace (default 0).
	Grace money.Nanos
	// PollInterval bounds how late rentals started on other replicas are seen (default 1s).
	PollInterval time.Duration
	// ClaimLease is how long a replica's claim on rentals holds before another may take them
	// over (default 1m).
	ClaimLease time.Duration
	// Replica names this replica in its claims (default: host name and a random suffix).
	Replica string
	// LedgerTimeout is the deadline of each ledger call (default 10s).
	LedgerTimeout time.Duration
	// Scheduler tuning; zero values take the app's defaults.
	BatchSize, Workers, Concurrency int
	// Now is the meter's clock (default time.Now); the benchmark moves it to a boundary.
	Now func() time.Time
}

// Load reads the configuration from e (see the README's configuration table).
func Load(e *config.Env) (Config, error) {
	c := Config{
		GRPCAddr:          e.String("TALLY_INSTANCES_GRPC_ADDR", ":9094"),
		MetricsAddr:       e.String("TALLY_INSTANCES_METRICS_ADDR", ""),
		DatabaseURL:       e.Required("DATABASE_URL"),
		SkipMigrations:    !e.Bool("TALLY_MIGRATE_ON_START", true),
		DBMaxConns:        int32(e.Int("TALLY_INSTANCES_DB_MAX_CONNS", 16)),
		Auth:              server.LoadAuthConfig(e),
		LedgerAddr:        e.String("TALLY_LEDGER_ADDR", "localhost:9091"),
		PricingAddr:       e.String("TALLY_PRICING_ADDR", "localhost:9092"),
		NotificationsAddr: e.String("TALLY_NOTIFICATIONS_ADDR", ""),
		BillingPeriod:     e.Duration("TALLY_INSTANCE_BILLING_PERIOD", time.Hour),
		PollInterval:      e.Duration("TALLY_INSTANCE_POLL_INTERVAL", time.Second),
		ClaimLease:        e.Duration("TALLY_INSTANCE_CLAIM_LEASE", time.Minute),
		Replica:           e.String("TALLY_INSTANCE_REPLICA", ""),
	}
	grace := e.String("TALLY_INSTANCE_GRACE", "0")
	errs := []error{e.Err()}
	var err error
	if c.Grace, err = money.ParseDecimal(grace); err != nil || c.Grace < 0 {
		errs = append(errs, fmt.Errorf("TALLY_INSTANCE_GRACE: %q is not a non-negative decimal amount", grace))
	}
	if err := app.ValidatePeriod(c.BillingPeriod); err != nil {
		errs = append(errs, fmt.Errorf("TALLY_INSTANCE_BILLING_PERIOD: %w", err))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("TALLY_INSTANCE_POLL_INTERVAL must be positive"))
	}
	if c.ClaimLease < 40*time.Second {
		errs = append(errs, errors.New("TALLY_INSTANCE_CLAIM_LEASE must be at least 40s (four ledger call timeouts)"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Migrate applies the service's migrations to the database of cfg and returns: `<binary> migrate`,
// run before the replicas start when they skip migrating (SkipMigrations).
func Migrate(ctx context.Context, cfg Config, _ *slog.Logger) error {
	return pg.MigrateDatabase(ctx, cfg.DatabaseURL, "instances", migrations.FS)
}

// Run serves the service on lis until ctx is done. Cancelling ctx also stops the scheduler
// mid-batch: the ledger calls in flight end, what they did is recorded and the claims released;
// a replica killed outright leaves its claims to expire, and whoever claims the rentals next
// replays the same ledger debits by idempotency key, so nothing is charged twice or lost.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	tel, err := telemetry.Start(ctx, ServiceName)
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	authn, err := server.NewAuth(ctx, cfg.Auth, ServiceName, logger)
	if err != nil {
		return err
	}
	pool, err := pg.Open(ctx, pg.Options{URL: cfg.DatabaseURL, Schema: "instances", MaxConns: cfg.DBMaxConns, Tracer: tel.PGTracer()})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.Prepare(ctx, pool, "instances", migrations.FS, !cfg.SkipMigrations); err != nil {
		return err
	}
	st, err := store.New(pool)
	if err != nil {
		return err
	}
	var conns connections
	defer conns.close()
	if cfg.LedgerTimeout == 0 {
		cfg.LedgerTimeout = ledgerclient.DefaultTimeout
	}
	d := dialer{cfg: cfg, identity: authn.Identity(), conns: &conns, logger: logger, tel: tel}
	ledger, prices, notifier, err := d.dialAll()
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Name: ServiceName, Logger: logger, Auth: authn, Policy: grpcapi.Policy(), Errors: grpcapi.Errors, Telemetry: tel})
	if err != nil {
		return err
	}
	meter, err := app.New(app.Config{
		Store: st, Ledger: ledger, Prices: prices, Notifier: notifier, Logger: logger,
		Period: cfg.BillingPeriod, Grace: cfg.Grace, PollInterval: cfg.PollInterval, ClaimLease: cfg.ClaimLease, Replica: cfg.Replica,
		LedgerTimeout: cfg.LedgerTimeout,
		BatchSize:     cfg.BatchSize, Workers: cfg.Workers, Concurrency: cfg.Concurrency, Now: cfg.Now,
		Metrics: srv.Registry(),
	})
	if err != nil {
		return err
	}
	api, err := grpcapi.New(meter)
	if err != nil {
		return err
	}
	instancesv1.RegisterInstanceMeteringServiceServer(srv.GRPC(), api)
	return server.Run(ctx, server.RunConfig{
		GRPC: srv, Listener: lis, MetricsAddr: cfg.MetricsAddr, Logger: logger,
		Workers: []server.Worker{{Name: "catalog watcher", Run: prices.Run}, {Name: "meter", Run: meter.Run}},
	})
}

// connections are the client connections of a Run, closed when it returns.
type connections []*grpc.ClientConn

func (c *connections) close() {
	for _, conn := range *c {
		_ = conn.Close()
	}
}

// dialer dials the services metering calls, with the service's own identity.
type dialer struct {
	cfg      Config
	identity auth.TokenSource
	conns    *connections
	logger   *slog.Logger
	tel      *telemetry.Telemetry
}

func (d dialer) dial(addr string) (*grpc.ClientConn, error) {
	conn, err := rpcclient.DialSource(addr, d.identity, d.tel.DialOption())
	if err != nil {
		return nil, err
	}
	*d.conns = append(*d.conns, conn)
	return conn, nil
}

// dialAll returns the ledger client, the price catalog watcher and the notifier (nil without
// TALLY_NOTIFICATIONS_ADDR).
func (d dialer) dialAll() (*ledgerclient.Client, *catalog.Watcher, rental.Notifier, error) {
	ledgerConn, err := d.dial(d.cfg.LedgerAddr)
	if err != nil {
		return nil, nil, nil, err
	}
	ledger, err := ledgerclient.New(ledgerclient.Config{Conn: ledgerConn, Timeout: d.cfg.LedgerTimeout})
	if err != nil {
		return nil, nil, nil, err
	}
	pricingConn, err := d.dial(d.cfg.PricingAddr)
	if err != nil {
		return nil, nil, nil, err
	}
	prices, err := catalog.NewWatcher(catalog.WatcherConfig{Client: pricingv1.NewPricingServiceClient(pricingConn), Logger: d.logger})
	if err != nil {
		return nil, nil, nil, err
	}
	if d.cfg.NotificationsAddr == "" {
		d.logger.Info("TALLY_NOTIFICATIONS_ADDR is not set: suspension notices stay queued")
		return ledger, prices, nil, nil
	}
	conn, err := d.dial(d.cfg.NotificationsAddr)
	if err != nil {
		return nil, nil, nil, err
	}
	notifier, err := notifyclient.New(notificationsv1.NewNotificationsServiceClient(conn))
	if err != nil {
		return nil, nil, nil, err
	}
	return ledger, prices, notifier, nil
}
