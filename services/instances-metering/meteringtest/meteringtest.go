// Package meteringtest starts a real instances-metering service (PostgreSQL, gRPC on 127.0.0.1)
// for tests and benchmarks: the tests of this service, of the gateway and the metering bench.
// It needs a ledger and a pricing service to call (see ledgertest, pricingtest, or
// ledgerclienttest.Fake for the ledger).
package meteringtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/instances-metering/internal/service"
)

// Options tune a test metering replica; zero values take test-friendly defaults.
type Options struct {
	// DatabaseURL is the database (schema "instances"); Start makes a fresh one when empty, New
	// requires it.
	DatabaseURL string
	// Secret verifies tokens and signs the service's own (HS256); it must match the ledger's
	// and pricing's (ledgertest.Secret).
	Secret string
	// LedgerAddr and PricingAddr are required; NotificationsAddr is optional.
	LedgerAddr, PricingAddr, NotificationsAddr string
	// BillingPeriod defaults to 1h; Grace to 0.
	BillingPeriod time.Duration
	Grace         money.Nanos
	// PollInterval defaults to 200ms.
	PollInterval time.Duration
	// Now is the business clock (clock.Manual.Now); time.Now when nil.
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Configure changes the service configuration last (same-module tests).
	Configure func(*service.Config)
	// Metrics serves the replica's Prometheus metrics at Meter.MetricsURL.
	Metrics bool
}

// Meter is a running metering replica.
type Meter struct {
	Addr        string
	DatabaseURL string
	// MetricsURL is the replica's /metrics when Options.Metrics is set.
	MetricsURL string
	replica    *servertest.Replica
}

// stopWait bounds a start and a stop.
const stopWait = 60 * time.Second

// New starts a replica and waits until it is healthy. It runs until Stop or until ctx ends.
func New(ctx context.Context, opts Options) (*Meter, error) {
	if opts.DatabaseURL == "" || opts.Secret == "" || opts.LedgerAddr == "" || opts.PricingAddr == "" {
		return nil, errors.New("meteringtest: DatabaseURL, Secret, LedgerAddr and PricingAddr are required")
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := service.Config{
		DatabaseURL: opts.DatabaseURL, DBMaxConns: 16, Auth: server.AuthConfig{JWTSecret: opts.Secret},
		LedgerAddr: opts.LedgerAddr, PricingAddr: opts.PricingAddr, NotificationsAddr: opts.NotificationsAddr,
		BillingPeriod: opts.BillingPeriod, Grace: opts.Grace, PollInterval: opts.PollInterval, ClaimLease: time.Minute,
		Now: opts.Now,
	}
	if cfg.BillingPeriod == 0 {
		cfg.BillingPeriod = time.Hour
	}
	var metricsURL string
	if opts.Metrics {
		var err error
		if cfg.MetricsAddr, metricsURL, err = servertest.MetricsAddr(); err != nil {
			return nil, err
		}
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	lis, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("meteringtest: %w", err)
	}
	logger := opts.Logger.With("meter", lis.Addr().String())
	r, err := servertest.StartReplica(ctx, servertest.ReplicaConfig{
		Name: "meteringtest: the service", Listener: lis, Timeout: stopWait, StopWithContext: true,
		Serve: func(ctx context.Context, lis net.Listener) error { return service.Run(ctx, cfg, lis, logger) },
	})
	if err != nil {
		return nil, err
	}
	return &Meter{Addr: r.Addr, DatabaseURL: opts.DatabaseURL, MetricsURL: metricsURL, replica: r}, nil
}

// Start is New for a test: a fresh database when Options.DatabaseURL is empty, stopped at the
// end of the test.
func Start(t testing.TB, opts Options) *Meter {
	t.Helper()
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = testenv.PostgresURL(t)
	}
	m, err := New(context.WithoutCancel(t.Context()), opts)
	require.NoError(t, err)
	servertest.StopAtCleanup(t, "meter", m.Stop)
	return m
}

// Stop cancels the replica mid-whatever-it-does and waits for it to return; it returns the
// service's error other than its cancellation. Stopping twice is stopping once.
func (m *Meter) Stop() error { return m.replica.Stop() }

// Client dials the replica with token (none when empty); the connection closes with the test.
func (m *Meter) Client(t testing.TB, token string) instancesv1.InstanceMeteringServiceClient {
	t.Helper()
	return instancesv1.NewInstanceMeteringServiceClient(servertest.Dial(t, m.Addr, token))
}
