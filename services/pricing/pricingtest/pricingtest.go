// Package pricingtest starts a real pricing service (PostgreSQL, gRPC on 127.0.0.1, the seed
// catalog) for the tests of the services that price usage.
package pricingtest

import (
	"context"
	"errors"
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
	"github.com/tallyhq/tally/services/pricing/service"
)

// Options tune a test pricing service.
type Options struct {
	// DatabaseURL shares a database between replicas; a fresh one when empty.
	DatabaseURL string
	// Secret verifies tokens; it must match the tokens the test mints.
	Secret string
	// SeedFile replaces the embedded seed catalog.
	SeedFile string
}

// Pricing is a running pricing replica.
type Pricing struct {
	Addr        string
	DatabaseURL string
	secret      string
	stop        context.CancelFunc
	done        chan error
	once        sync.Once
}

// Start runs a pricing replica until the test ends.
func Start(t testing.TB, opts Options) *Pricing {
	t.Helper()
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = testenv.PostgresURL(t)
	}
	require.NotEmpty(t, opts.Secret, "pricingtest: Options.Secret is required")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pricing{Addr: lis.Addr().String(), DatabaseURL: opts.DatabaseURL, secret: opts.Secret, stop: cancel, done: make(chan error, 1)}
	cfg := service.Config{DatabaseURL: opts.DatabaseURL, SeedFile: opts.SeedFile, PollInterval: 100 * time.Millisecond, Auth: server.AuthConfig{JWTSecret: opts.Secret}}
	go func() { p.done <- service.Run(ctx, cfg, lis, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() { p.Stop(t) })
	conn, err := rpcclient.Dial(p.Addr, "")
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	hc := grpc_health_v1.NewHealthClient(conn)
	require.Eventually(t, func() bool {
		resp, err := hc.Check(t.Context(), &grpc_health_v1.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING
	}, 30*time.Second, 20*time.Millisecond, "pricing did not become healthy")
	return p
}

// Stop shuts the replica down and waits for it.
func (p *Pricing) Stop(t testing.TB) {
	t.Helper()
	p.once.Do(func() {
		p.stop()
		select {
		case err := <-p.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("pricing stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("pricing did not stop")
		}
	})
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
