// Package notificationstest starts a real notifications replica (PostgreSQL, gRPC on 127.0.0.1,
// a ledger to follow, optionally an SMTP server) for tests and benchmarks.
package notificationstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/notifications/internal/sender"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

// ConsoleURL is the console base URL of the emails' links unless Options.ConsoleURL is set.
const ConsoleURL = "https://app.tally.test"

// Options tune a test notifications replica.
type Options struct {
	// DatabaseURL is the database of the notifications schema (required); replicas sharing it
	// share their state, and sharing the ledger's lets a test read both.
	DatabaseURL string
	// LedgerAddr is the gRPC address of the ledger whose events the replica follows (required).
	LedgerAddr string
	// Secret verifies tokens and signs the replica's own calls to the ledger (required).
	Secret string
	// SMTPAddr is the host:port of a plain SMTP server (mailpit); empty runs no sender.
	SMTPAddr string
	// ConsoleURL is the console base URL of the emails' links (default ConsoleURL).
	ConsoleURL string
	// Now is the business clock (nil: time.Now), e.g. a clock.Manual: alert and notice times and
	// which credits expire soon. Email claims and retries stay on real time.
	Now func() time.Time
	// Logger receives the replica's logs (default: discarded).
	Logger *slog.Logger
	// Configure changes the configuration last, e.g. SendWorkers or Replica.
	Configure func(*service.Config)
	// Metrics serves the replica's Prometheus metrics at Notifications.MetricsURL.
	Metrics bool
}

// Config returns the configuration a replica starts with: opts over fast test intervals.
func Config(opts Options) (service.Config, error) {
	if opts.DatabaseURL == "" || opts.LedgerAddr == "" || opts.Secret == "" {
		return service.Config{}, errors.New("notificationstest: DatabaseURL, LedgerAddr and Secret are required")
	}
	if opts.ConsoleURL == "" {
		opts.ConsoleURL = ConsoleURL
	}
	cfg := service.Config{
		DatabaseURL: opts.DatabaseURL,
		Auth:        server.AuthConfig{JWTSecret: opts.Secret},
		LedgerAddr:  opts.LedgerAddr,
		ConsoleURL:  opts.ConsoleURL,
		SMTP: sender.SMTPConfig{
			Host: "127.0.0.1", Port: 25, TLS: sender.TLSNone, From: "Tally <notifications@tally.test>", Timeout: 5 * time.Second,
		},
		PollInterval:     50 * time.Millisecond,
		RetryBase:        100 * time.Millisecond,
		RetryMax:         time.Second,
		MaxAttempts:      100,
		LeaseInterval:    200 * time.Millisecond,
		EventBatch:       500,
		ReminderInterval: 100 * time.Millisecond,
		ExpiryNotice:     7 * 24 * time.Hour,
		DBMaxConns:       10,
		Now:              opts.Now,
	}
	if opts.SMTPAddr != "" {
		host, port, err := net.SplitHostPort(opts.SMTPAddr)
		if err != nil {
			return service.Config{}, fmt.Errorf("notificationstest: SMTPAddr: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return service.Config{}, fmt.Errorf("notificationstest: SMTPAddr port: %w", err)
		}
		cfg.SMTP.Host, cfg.SMTP.Port, cfg.SendWorkers = host, p, 2
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	return cfg, nil
}

// Notifications is a running notifications replica.
type Notifications struct {
	Addr        string
	DatabaseURL string
	// MetricsURL is the replica's /metrics when Options.Metrics is set.
	MetricsURL string
	replica    *servertest.Replica
}

// replicaWait bounds a stop, and a start within ctx.
const replicaWait = 60 * time.Second

// New starts a replica and waits until it serves; Stop ends it. ctx bounds the start only.
func New(ctx context.Context, opts Options) (*Notifications, error) {
	cfg, err := Config(opts)
	if err != nil {
		return nil, err
	}
	var metricsURL string
	if opts.Metrics {
		if cfg.MetricsAddr, metricsURL, err = servertest.MetricsAddr(); err != nil {
			return nil, err
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	logger = logger.With("replica", lis.Addr().String())
	r, err := servertest.StartReplica(ctx, servertest.ReplicaConfig{
		Name: "notifications replica", Listener: lis, Timeout: replicaWait,
		Serve: func(ctx context.Context, lis net.Listener) error { return service.Run(ctx, cfg, lis, logger) },
	})
	if err != nil {
		return nil, err
	}
	return &Notifications{Addr: r.Addr, DatabaseURL: cfg.DatabaseURL, MetricsURL: metricsURL, replica: r}, nil
}

// Start starts a replica for t and stops it when t ends.
func Start(t testing.TB, opts Options) *Notifications {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	n, err := New(ctx, opts)
	require.NoError(t, err, "notifications replica did not start")
	servertest.StopAtCleanup(t, "notifications replica", n.Stop)
	return n
}

// Stop shuts the replica down gracefully and waits for it (once; later calls return the same
// result).
func (n *Notifications) Stop() error { return n.replica.Stop() }

// Client returns a NotificationsService client calling with token, closed when t ends.
func (n *Notifications) Client(t testing.TB, token string) notificationsv1.NotificationsServiceClient {
	t.Helper()
	return notificationsv1.NewNotificationsServiceClient(servertest.Dial(t, n.Addr, token))
}
