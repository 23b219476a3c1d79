// Package service is the composition root of the notifications service: it assembles the
// store, the ledger client, the use cases (event follower, expiry reminders, send loop) and the
// gRPC server from the configuration. cmd/notifications runs it; notificationstest starts real
// replicas with it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/config"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/services/notifications/internal/app"
	"github.com/tallyhq/tally/services/notifications/internal/emails"
	"github.com/tallyhq/tally/services/notifications/internal/grpcapi"
	"github.com/tallyhq/tally/services/notifications/internal/sender"
	"github.com/tallyhq/tally/services/notifications/internal/store"
	"github.com/tallyhq/tally/services/notifications/migrations"
)

// Schema is the PostgreSQL schema of the service.
const Schema = "notifications"

// Config is the service's configuration; Load reads it from the environment.
type Config struct {
	GRPCAddr    string
	MetricsAddr string
	DatabaseURL string
	// SkipMigrations starts without applying the migrations (TALLY_MIGRATE_ON_START=false): the
	// service then refuses to start unless `<binary> migrate` applied them all.
	SkipMigrations bool
	Auth           server.AuthConfig
	// LedgerAddr is the ledger's gRPC address, called with the service's own identity
	// (service:notifications, see Auth).
	LedgerAddr string
	// ConsoleURL is the web console's base URL (TALLY_CONSOLE_URL), for the links in emails.
	ConsoleURL string
	SMTP       sender.SMTPConfig
	// SendWorkers is the number of concurrent SMTP senders; 0 runs no sender in this replica
	// (emails stay queued for the replicas that have one).
	SendWorkers  int
	PollInterval time.Duration
	RetryBase    time.Duration
	RetryMax     time.Duration
	MaxAttempts  int
	// ClaimLease is how long a sender holds an email it is sending before another may take it
	// over (default 2m, at least twice the SMTP timeout).
	ClaimLease time.Duration
	// Replica names this replica in its claims (default: host name and a random suffix).
	Replica string
	// LeaseInterval is how often a standby replica tries the evaluator lease and the holder
	// checks it.
	LeaseInterval time.Duration
	EventBatch    int
	// ReminderInterval is how often expiry reminders are looked for; ExpiryNotice is how long
	// before the expiry they are sent.
	ReminderInterval time.Duration
	ExpiryNotice     time.Duration
	DBMaxConns       int32
	// Now is the business clock (nil: time.Now): when alerts and notices happen and which
	// credits expire soon. Timers, leases, email claims and retries stay on real time, as the
	// database stamps queued emails due with its own clock.
	Now func() time.Time
}

// Load reads the configuration from e (see the README's configuration table).
func Load(e *config.Env) (Config, error) {
	c := Config{
		GRPCAddr:       e.String("TALLY_NOTIFICATIONS_GRPC_ADDR", ":9095"),
		MetricsAddr:    e.String("TALLY_NOTIFICATIONS_METRICS_ADDR", ""),
		DatabaseURL:    e.Required("DATABASE_URL"),
		SkipMigrations: !e.Bool("TALLY_MIGRATE_ON_START", true),
		Auth:           server.LoadAuthConfig(e),
		LedgerAddr:     e.String("TALLY_LEDGER_ADDR", "localhost:9091"),
		ConsoleURL:     e.ConsoleURL(),
		SMTP: sender.SMTPConfig{
			Host:     e.String("TALLY_SMTP_HOST", "localhost"),
			Port:     e.Int("TALLY_SMTP_PORT", 1025),
			Username: e.String("TALLY_SMTP_USERNAME", ""),
			Password: e.String("TALLY_SMTP_PASSWORD", ""),
			From:     e.String("TALLY_SMTP_FROM", "Tally <notifications@tally.localhost>"),
			Timeout:  e.Duration("TALLY_SMTP_TIMEOUT", 15*time.Second),
		},
		SendWorkers:      e.Int("TALLY_NOTIFICATIONS_SEND_WORKERS", 2),
		PollInterval:     e.Duration("TALLY_NOTIFICATIONS_POLL_INTERVAL", time.Second),
		RetryBase:        e.Duration("TALLY_NOTIFICATIONS_RETRY_BASE", 5*time.Second),
		RetryMax:         e.Duration("TALLY_NOTIFICATIONS_RETRY_MAX", 30*time.Minute),
		MaxAttempts:      e.Int("TALLY_NOTIFICATIONS_MAX_ATTEMPTS", 20),
		ClaimLease:       e.Duration("TALLY_NOTIFICATIONS_CLAIM_LEASE", 2*time.Minute),
		Replica:          e.String("TALLY_NOTIFICATIONS_REPLICA", ""),
		LeaseInterval:    e.Duration("TALLY_NOTIFICATIONS_LEASE_INTERVAL", 2*time.Second),
		EventBatch:       e.Int("TALLY_NOTIFICATIONS_EVENT_BATCH", 500),
		ReminderInterval: e.Duration("TALLY_NOTIFICATIONS_REMINDER_INTERVAL", time.Minute),
		ExpiryNotice:     e.Duration("TALLY_NOTIFICATIONS_EXPIRY_NOTICE", 7*24*time.Hour),
		DBMaxConns:       int32(e.Int("TALLY_NOTIFICATIONS_DB_MAX_CONNS", 10)),
	}
	tlsMode := e.String("TALLY_SMTP_TLS", "none")
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	mode, err := sender.ParseTLSMode(tlsMode)
	if err != nil {
		return Config{}, fmt.Errorf("TALLY_SMTP_TLS: %w", err)
	}
	c.SMTP.TLS = mode
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the values Load cannot check one by one.
func (c Config) Validate() error {
	var errs []error
	if c.SendWorkers < 0 {
		errs = append(errs, errors.New("TALLY_NOTIFICATIONS_SEND_WORKERS must not be negative"))
	}
	if c.SMTP.Port <= 0 || c.SMTP.Port > 65535 {
		errs = append(errs, errors.New("TALLY_SMTP_PORT: "+strconv.Itoa(c.SMTP.Port)+" is not a port"))
	}
	if c.PollInterval <= 0 || c.RetryBase <= 0 || c.RetryMax < c.RetryBase || c.LeaseInterval <= 0 || c.ReminderInterval <= 0 || c.ExpiryNotice <= 0 {
		errs = append(errs, errors.New("intervals must be positive and TALLY_NOTIFICATIONS_RETRY_MAX at least TALLY_NOTIFICATIONS_RETRY_BASE"))
	}
	if c.ClaimLease != 0 && c.ClaimLease < 2*smtpTimeout(c.SMTP.Timeout) {
		errs = append(errs, errors.New("TALLY_NOTIFICATIONS_CLAIM_LEASE must be at least twice TALLY_SMTP_TIMEOUT"))
	}
	if c.MaxAttempts < 1 || c.EventBatch < 1 {
		errs = append(errs, errors.New("TALLY_NOTIFICATIONS_MAX_ATTEMPTS and TALLY_NOTIFICATIONS_EVENT_BATCH must be positive"))
	}
	return errors.Join(errs...)
}

// smtpTimeout is the SMTP timeout in force (default 15s).
func smtpTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return 15 * time.Second
	}
	return d
}

// Migrate applies the service's migrations to the database of cfg and returns: `<binary> migrate`,
// run before the replicas start when they skip migrating (SkipMigrations).
func Migrate(ctx context.Context, cfg Config, _ *slog.Logger) error {
	return pg.MigrateDatabase(ctx, cfg.DatabaseURL, Schema, migrations.FS)
}

// Run serves the notifications service on lis until ctx is done, then stops gracefully.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		_ = lis.Close()
		return err
	}
	tel, err := telemetry.Start(ctx, "notifications")
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	pool, err := pg.Open(ctx, pg.Options{URL: cfg.DatabaseURL, Schema: Schema, MaxConns: cfg.DBMaxConns, Tracer: tel.PGTracer()})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.Prepare(ctx, pool, Schema, migrations.FS, !cfg.SkipMigrations); err != nil {
		return err
	}
	st, err := store.New(pool)
	if err != nil {
		return err
	}
	authn, err := server.NewAuth(ctx, cfg.Auth, "notifications", logger)
	if err != nil {
		return err
	}
	conn, err := rpcclient.DialSource(cfg.LedgerAddr, authn.Identity(), tel.DialOption())
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	lc, err := ledgerclient.New(ledgerclient.Config{Conn: conn, Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Name: "notifications", Logger: logger, Auth: authn, Policy: grpcapi.Policy(), Errors: grpcapi.Errors, Telemetry: tel})
	if err != nil {
		return err
	}
	workers, err := newWorkers(cfg, st, pool, app.Ledger{Client: lc}, srv, logger)
	if err != nil {
		return err
	}
	uc, err := app.New(app.Config{Store: st, Ledger: app.Ledger{Client: lc}, Logger: logger, Now: cfg.Now, Queued: workers.wake})
	if err != nil {
		return err
	}
	api, err := grpcapi.New(grpcapi.Config{App: uc})
	if err != nil {
		return err
	}
	notificationsv1.RegisterNotificationsServiceServer(srv.GRPC(), api)
	return server.Run(ctx, server.RunConfig{GRPC: srv, Listener: lis, MetricsAddr: cfg.MetricsAddr, Workers: workers.list, Logger: logger})
}

// workers are the background loops of a replica and the function that wakes its senders.
type workers struct {
	list []server.Worker
	wake func()
}

// newWorkers builds the event follower, the expiry reminders and, unless SendWorkers is 0, the
// send loop, with their metrics registered on srv.
func newWorkers(cfg Config, st *store.Store, pool *pgxpool.Pool, ledger app.Ledger, srv *server.Server, logger *slog.Logger) (workers, error) {
	metrics, err := app.NewMetrics(srv.Registry())
	if err != nil {
		return workers{}, err
	}
	attempts, applied := metrics.EmailAttempts, metrics.Applied
	w := workers{wake: func() {}}
	if cfg.SendWorkers > 0 {
		send, err := newSendLoop(cfg, st, attempts, logger.With("component", "sender"))
		if err != nil {
			return workers{}, err
		}
		w.wake = send.Wake
		w.list = append(w.list, server.Worker{Name: "sender", Run: send.Run})
	} else {
		logger.Warn("TALLY_NOTIFICATIONS_SEND_WORKERS is 0: this replica queues emails but sends none")
	}
	lease, err := store.NewAdvisoryLease(pool, "tally.notifications.evaluator", cfg.LeaseInterval, logger.With("component", "evaluator"))
	if err != nil {
		return workers{}, err
	}
	follower, err := app.NewFollower(app.FollowerConfig{
		Ledger: ledger, Store: st, Lease: lease, Logger: logger.With("component", "evaluator"),
		MaxBatch: cfg.EventBatch, RetryDelay: time.Second, Queued: w.wake, Applied: applied,
	})
	if err != nil {
		return workers{}, err
	}
	reminders := &app.ExpiryReminders{
		Store: st, Interval: cfg.ReminderInterval, Window: cfg.ExpiryNotice, Logger: logger.With("component", "reminders"), Now: cfg.Now, Queued: w.wake,
	}
	w.list = append(w.list, server.Worker{Name: "evaluator", Run: follower.Run}, server.Worker{Name: "reminders", Run: reminders.Run})
	return w, nil
}

// newSendLoop builds the SMTP mailer and the send loop over it.
func newSendLoop(cfg Config, st *store.Store, attempts *prometheus.CounterVec, logger *slog.Logger) (*app.SendLoop, error) {
	renderer, err := emails.NewRenderer(cfg.ConsoleURL)
	if err != nil {
		return nil, err
	}
	mailer, err := sender.New(sender.Config{SMTP: cfg.SMTP, Renderer: renderer})
	if err != nil {
		return nil, err
	}
	lease := cfg.ClaimLease
	if lease == 0 {
		lease = max(2*time.Minute, 2*mailer.Timeout())
	}
	if lease < 2*mailer.Timeout() {
		return nil, fmt.Errorf("sender: claim lease %s must be at least twice the SMTP timeout %s", lease, mailer.Timeout())
	}
	replica := cfg.Replica
	if replica == "" {
		replica = config.ReplicaName("notifications")
	}
	return app.NewSendLoop(app.SendConfig{
		Outbox: st, Dial: func() (app.MailConn, error) { return mailer.Conn() }, Logger: logger,
		Workers: cfg.SendWorkers, PollInterval: cfg.PollInterval, RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax,
		MaxAttempts: cfg.MaxAttempts, ClaimLease: lease, Replica: replica, Sent: attempts,
	})
}
