// Package pricingtest starts a real pricing service (PostgreSQL, gRPC on 127.0.0.1, the seed
// catalog) for the tests of the services that price usage.
package pricingtest

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

	"github.com/tallyhq/tally/pkg/auth"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/pricing/internal/service"
)

// Options tune a test pricing service.
type Options struct {
	// DatabaseURL shares a database between replicas; Start makes a fresh one when empty, New
	// requires it.
	DatabaseURL string
	// Secret verifies tokens; it must match the tokens the test mints.
	Secret string
	// SeedFile replaces the embedded seed catalog.
	SeedFile string
	// PollInterval defaults to 100ms.
	PollInterval time.Duration
	// Now is the business clock (clock.Manual.Now); time.Now when nil.
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Configure changes the service configuration last (same-module tests).
	Configure func(*service.Config)
	// Metrics serves the replica's Prometheus metrics at Pricing.MetricsURL.
	Metrics bool
}

// Pricing is a running pricing replica.
type Pricing struct {
	Addr        string
	DatabaseURL string
	// MetricsURL is the replica's /metrics when Options.Metrics is set.
	MetricsURL string
	secret     string
	replica    *servertest.Replica
}

// stopWait bounds a start and a stop.
const stopWait = 30 * time.Second

// New starts a pricing replica and waits until it is healthy (benchmarks; tests use Start). It
// runs until Stop or until ctx ends.
func New(ctx context.Context, opts Options) (*Pricing, error) {
	if opts.DatabaseURL == "" || opts.Secret == "" {
		return nil, errors.New("pricingtest: Options.DatabaseURL and Options.Secret are required")
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := service.Config{DatabaseURL: opts.DatabaseURL, SeedFile: opts.SeedFile, PollInterval: opts.PollInterval,
		Auth: server.AuthConfig{JWTSecret: opts.Secret}, Now: opts.Now}
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
		return nil, fmt.Errorf("pricingtest: %w", err)
	}
	r, err := servertest.StartReplica(ctx, servertest.ReplicaConfig{
		Name: "pricingtest: pricing", Listener: lis, Timeout: stopWait, StopWithContext: true,
		Serve: func(ctx context.Context, lis net.Listener) error { return service.Run(ctx, cfg, lis, opts.Logger) },
	})
	if err != nil {
		return nil, err
	}
	return &Pricing{Addr: r.Addr, DatabaseURL: opts.DatabaseURL, MetricsURL: metricsURL, secret: opts.Secret, replica: r}, nil
}

// Start runs a pricing replica until the test ends.
func Start(t testing.TB, opts Options) *Pricing {
	t.Helper()
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = testenv.PostgresURL(t)
	}
	require.NotEmpty(t, opts.Secret, "pricingtest: Options.Secret is required")
	p, err := New(context.WithoutCancel(t.Context()), opts)
	require.NoError(t, err)
	servertest.StopAtCleanup(t, "pricing", p.Stop)
	return p
}

// Stop shuts the replica down and waits for it; it returns the service's error other than its
// cancellation. Stopping twice is stopping once.
func (p *Pricing) Stop() error { return p.replica.Stop() }

// Client dials the replica with token (none when empty).
func (p *Pricing) Client(t testing.TB, token string) pricingv1.PricingServiceClient {
	t.Helper()
	return pricingv1.NewPricingServiceClient(servertest.Dial(t, p.Addr, token))
}

// OpsToken mints an ops token for this replica.
func (p *Pricing) OpsToken(t testing.TB) string {
	t.Helper()
	tok, err := auth.Mint([]byte(p.secret), auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}, time.Hour)
	require.NoError(t, err)
	return tok
}
