// Package ledgertest starts a real ledger service (PostgreSQL, Redis, gRPC on 127.0.0.1) for the
// tests of the ledger and of the services that call it.
package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
	"github.com/tallyhq/tally/services/ledger/service"
)

// Secret signs the tokens of test ledgers.
const Secret = "ledgertest-secret-0123456789abcdef"

// Options tune a test ledger; zero values take test-friendly defaults.
type Options struct {
	// DatabaseURL and RedisURL share state between replicas; fresh private ones when empty.
	DatabaseURL string
	RedisURL    string
	// CreditValidity defaults to 3 calendar months.
	CreditValidity config.Period
	// SweepInterval defaults to 100ms.
	SweepInterval time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
	// PricingAddr is a pricing service to follow (see pricingtest); usage debits are refused
	// without one.
	PricingAddr string
	// MaxRequestAmount is the per-request maximum (TALLY_MAX_REQUEST_AMOUNT); 0 is the default.
	MaxRequestAmount money.Nanos
	// PlatformShards is the number of rows per platform account (default 4).
	PlatformShards int
	// Auth replaces the HS256 verification with Secret (e.g. a JWKS of authtest.Provider).
	Auth *server.AuthConfig
	// Metrics serves the replica's Prometheus metrics (see Ledger.MetricsURL).
	Metrics bool
	// DBTimeout, CommitRetryFor, RedisTimeout, BalanceCacheTTL, EpochInterval, EpochMaxAge and
	// ReplicaTimeout are the ledger's settings of the same names (its defaults when zero).
	DBTimeout       time.Duration
	CommitRetryFor  time.Duration
	RedisTimeout    time.Duration
	BalanceCacheTTL time.Duration
	EpochInterval   time.Duration
	EpochMaxAge     time.Duration
	ReplicaTimeout  time.Duration
	// UsageInterval is how often the usage summary follows new events (default 20ms here).
	UsageInterval time.Duration
}

// Ledger is a running ledger replica.
type Ledger struct {
	Addr        string
	DatabaseURL string
	RedisURL    string
	// MetricsURL is the replica's /metrics when Options.Metrics is set.
	MetricsURL string
	stop       context.CancelFunc
	done       chan error
	stopOnce   sync.Once
}

// Start runs a ledger replica until the test ends (or Stop).
func Start(t testing.TB, opts Options) *Ledger {
	t.Helper()
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = testenv.PostgresURL(t)
	}
	if opts.RedisURL == "" {
		opts.RedisURL = testenv.RedisURL(t)
	}
	if opts.CreditValidity == (config.Period{}) {
		opts.CreditValidity = config.Period{Months: 3}
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = 100 * time.Millisecond
	}
	if opts.UsageInterval == 0 {
		opts.UsageInterval = 20 * time.Millisecond
	}
	if opts.PlatformShards == 0 {
		opts.PlatformShards = 4
	}
	var limit money.Limit
	if opts.MaxRequestAmount != 0 {
		var err error
		limit, err = money.NewLimit(opts.MaxRequestAmount)
		require.NoError(t, err)
	}
	if opts.Logger == nil {
		var out io.Writer = io.Discard
		if os.Getenv("TALLY_TEST_LOG") != "" {
			out = os.Stderr // TALLY_TEST_LOG=1 shows the ledger's logs while debugging a test
		}
		opts.Logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	authCfg := server.AuthConfig{JWTSecret: Secret}
	if opts.Auth != nil {
		authCfg = *opts.Auth
	}
	cfg := service.Config{
		DatabaseURL:      opts.DatabaseURL,
		RedisURL:         opts.RedisURL,
		Auth:             authCfg,
		DefaultCurrency:  "USD",
		CreditValidity:   opts.CreditValidity,
		SweepInterval:    opts.SweepInterval,
		CommitMaxBatch:   256,
		CommitWorkers:    2,
		PlatformShards:   opts.PlatformShards,
		DBMaxConns:       20,
		PricingAddr:      opts.PricingAddr,
		MaxRequestAmount: limit,
		DBTimeout:        opts.DBTimeout,
		CommitRetryFor:   opts.CommitRetryFor,
		RedisTimeout:     opts.RedisTimeout,
		BalanceCacheTTL:  opts.BalanceCacheTTL,
		EpochInterval:    opts.EpochInterval,
		EpochMaxAge:      opts.EpochMaxAge,
		ReplicaTimeout:   opts.ReplicaTimeout,
		UsageInterval:    opts.UsageInterval,
	}
	var metricsURL string
	if opts.Metrics {
		port, err := localstack.FreePort()
		require.NoError(t, err)
		cfg.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", port)
		metricsURL = "http://" + cfg.MetricsAddr + "/metrics"
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	l := &Ledger{Addr: lis.Addr().String(), DatabaseURL: opts.DatabaseURL, RedisURL: opts.RedisURL, MetricsURL: metricsURL, stop: cancel, done: make(chan error, 1)}
	go func() { l.done <- service.Run(ctx, cfg, lis, opts.Logger) }()
	t.Cleanup(func() { l.Stop(t) })
	waitHealthy(t, l)
	if metricsURL != "" {
		waitMetrics(t, metricsURL)
	}
	return l
}

// waitMetrics waits until the replica's /metrics answers: its HTTP server starts beside the gRPC
// server, so health alone does not say it is listening yet.
func waitMetrics(t testing.TB, url string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 10*time.Millisecond, "the ledger's /metrics at %s never answered", url)
}

func waitHealthy(t testing.TB, l *Ledger) {
	t.Helper()
	conn, err := grpc.NewClient(l.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	hc := grpc_health_v1.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-l.done:
			l.done <- err
			require.NoError(t, err, "ledger exited before becoming healthy")
			require.Fail(t, "ledger exited before becoming healthy")
		default:
		}
		resp, err := hc.Check(t.Context(), &grpc_health_v1.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			require.NoError(t, err, "ledger did not become healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the replica down gracefully and waits for it; calling it twice is fine.
func (l *Ledger) Stop(t testing.TB) {
	t.Helper()
	l.stopOnce.Do(func() {
		l.stop()
		select {
		case err := <-l.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("ledger stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("ledger did not stop")
		}
	})
}

// Token mints a token signed with Secret.
func Token(t testing.TB, c auth.Claims) string {
	t.Helper()
	if c.Subject == "" {
		c.Subject = "test-user"
	}
	tok, err := auth.Mint([]byte(Secret), c, time.Hour)
	require.NoError(t, err)
	return tok
}

// OpsToken is a token with the ops role.
func OpsToken(t testing.TB) string {
	return Token(t, auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}})
}

// ServiceToken is the token of internal service name.
func ServiceToken(t testing.TB, name string) string {
	return Token(t, auth.Claims{Subject: "service:" + name, Roles: []auth.Role{auth.RoleService}})
}

// Client dials the replica with token (none when empty).
func (l *Ledger) Client(t testing.TB, token string) ledgerv1.LedgerServiceClient {
	t.Helper()
	conn, err := rpcclient.Dial(l.Addr, token)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return ledgerv1.NewLedgerServiceClient(conn)
}

// RowCounts counts the rows of every table of the ledger's schema (textchecktest.RowCounts)
// but those its background loops write whenever they run, so that they may change between two
// counts without any request: usage_daily (the usage follower, after the commits it counts, which
// are in events) and cache_replicas (the heartbeats, the first one some time after start).
func RowCounts(dbURL string) func(t testing.TB) map[string]int64 {
	counts := textchecktest.RowCounts(dbURL, "ledger")
	return func(t testing.TB) map[string]int64 {
		t.Helper()
		c := counts(t)
		delete(c, "usage_daily")
		delete(c, "cache_replicas")
		return c
	}
}
