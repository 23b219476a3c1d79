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
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/auth"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
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
}

// Pricing is a running pricing replica.
type Pricing struct {
	Addr        string
	DatabaseURL string
	secret      string
	stop        context.CancelFunc
	done        chan error
	once        sync.Once
	err         error
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
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	lis, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pricingtest: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	p := &Pricing{Addr: lis.Addr().String(), DatabaseURL: opts.DatabaseURL, secret: opts.Secret, stop: cancel, done: make(chan error, 1)}
	go func() { p.done <- service.Run(rctx, cfg, lis, opts.Logger) }()
	if err := p.waitHealthy(ctx); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
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
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("pricing stopped with error: %v", err)
		}
	})
	return p
}

func (p *Pricing) waitHealthy(ctx context.Context) error {
	conn, err := rpcclient.Dial(p.Addr, "")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	hc := grpc_health_v1.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(ctx, stopWait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("pricingtest: pricing exited before becoming healthy: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("pricingtest: pricing did not become healthy: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop shuts the replica down and waits for it; it returns the service's error other than its
// cancellation. Stopping twice is stopping once.
func (p *Pricing) Stop() error {
	p.once.Do(func() {
		p.stop()
		select {
		case err := <-p.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				p.err = err
			}
		case <-time.After(stopWait):
			p.err = errors.New("pricingtest: pricing did not stop")
		}
	})
	return p.err
}

// Client dials the replica with token (none when empty).
func (p *Pricing) Client(t testing.TB, token string) pricingv1.PricingServiceClient {
	t.Helper()
	conn, err := rpcclient.Dial(p.Addr, token)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pricingv1.NewPricingServiceClient(conn)
}

// OpsToken mints an ops token for this replica.
func (p *Pricing) OpsToken(t testing.TB) string {
	t.Helper()
	tok, err := auth.Mint([]byte(p.secret), auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}, time.Hour)
	require.NoError(t, err)
	return tok
}
