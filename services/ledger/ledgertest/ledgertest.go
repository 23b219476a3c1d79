// Package ledgertest starts a real ledger service (PostgreSQL, Redis, gRPC on 127.0.0.1) for the
// tests of the ledger and of the services that call it.
package ledgertest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
	"github.com/tallyhq/tally/services/ledger/internal/service"
	"github.com/tallyhq/tally/services/ledger/internal/shard"
)

// Secret signs the tokens of test ledgers.
const Secret = "ledgertest-secret-0123456789abcdef"

// Options tune a test ledger; zero values take test-friendly defaults.
type Options struct {
	// DatabaseURL and RedisURL share state between replicas. Start makes fresh private ones
	// when empty; New needs DatabaseURL and runs without a balance cache when RedisURL is empty.
	DatabaseURL string
	RedisURL    string
	// Shards, when set, is the ledger's TALLY_LEDGER_SHARDS ("a=postgres://… b=postgres://…");
	// DatabaseURL must then be one of them. ShardMapRefresh is TALLY_LEDGER_SHARD_MAP_REFRESH.
	Shards          string
	ShardMapRefresh time.Duration
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
	// CommitMaxBatch, CommitMaxWait and CommitWorkers tune the group committer (defaults 256,
	// 0 and 2 here).
	CommitMaxBatch int
	CommitMaxWait  time.Duration
	CommitWorkers  int
	// Configure, when set, edits the ledger's configuration last (same-module callers: the
	// benches and the ledger's own tests).
	Configure func(*service.Config)
	// Now is the ledger's business clock (credit validity and expiry, holds' TTLs, available
	// balances): a clock.Manual's Now makes expiry a step of the test; time.Now when nil.
	Now func() time.Time
}

// Ledger is a running ledger replica.
type Ledger struct {
	Addr        string
	DatabaseURL string
	RedisURL    string
	// MetricsURL is the replica's /metrics when Options.Metrics is set.
	MetricsURL string
	replica    *servertest.Replica
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
	l, err := New(t.Context(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { l.Stop(t) })
	if l.MetricsURL != "" {
		waitMetrics(t, l.MetricsURL)
	}
	return l
}

// New runs a ledger replica on 127.0.0.1 until Close and returns once it is healthy; ctx bounds
// the start only. Benchmarks use it; tests use Start.
func New(ctx context.Context, opts Options) (*Ledger, error) {
	if opts.DatabaseURL == "" {
		return nil, errors.New("ledgertest: DatabaseURL is required")
	}
	cfg, err := serviceConfig(opts)
	if err != nil {
		return nil, err
	}
	var metricsURL string
	if opts.Metrics {
		if cfg.MetricsAddr, metricsURL, err = servertest.MetricsAddr(); err != nil {
			return nil, err
		}
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	logger := opts.Logger
	if logger == nil {
		out := io.Writer(io.Discard)
		if os.Getenv("TALLY_TEST_LOG") != "" {
			out = os.Stderr // TALLY_TEST_LOG=1 shows the ledger's logs while debugging a test
		}
		logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := servertest.StartReplica(ctx, servertest.ReplicaConfig{
		Name: "ledger", Timeout: 30 * time.Second,
		Serve: func(ctx context.Context, lis net.Listener) error { return service.Run(ctx, cfg, lis, logger) },
	})
	if err != nil {
		return nil, err
	}
	return &Ledger{Addr: r.Addr, DatabaseURL: opts.DatabaseURL, RedisURL: opts.RedisURL, MetricsURL: metricsURL, replica: r}, nil
}

// serviceConfig is the ledger's configuration for opts, with the test defaults.
func serviceConfig(opts Options) (service.Config, error) {
	var limit money.Limit
	if opts.MaxRequestAmount != 0 {
		var err error
		if limit, err = money.NewLimit(opts.MaxRequestAmount); err != nil {
			return service.Config{}, err
		}
	}
	authCfg := server.AuthConfig{JWTSecret: Secret}
	if opts.Auth != nil {
		authCfg = *opts.Auth
	}
	or := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	orDur := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	validity := opts.CreditValidity
	if validity == (config.Period{}) {
		validity = config.Period{Months: 3}
	}
	var shards []shard.Shard
	if opts.Shards != "" {
		var err error
		if shards, err = shard.ParseShards(opts.Shards); err != nil {
			return service.Config{}, err
		}
	}
	return service.Config{
		Shards:           shards,
		ShardMapRefresh:  orDur(opts.ShardMapRefresh, time.Second),
		DatabaseURL:      opts.DatabaseURL,
		RedisURL:         opts.RedisURL,
		Auth:             authCfg,
		DefaultCurrency:  "USD",
		CreditValidity:   validity,
		SweepInterval:    orDur(opts.SweepInterval, 100*time.Millisecond),
		CommitMaxBatch:   or(opts.CommitMaxBatch, 256),
		CommitMaxWait:    opts.CommitMaxWait,
		CommitWorkers:    or(opts.CommitWorkers, 2),
		PlatformShards:   or(opts.PlatformShards, 4),
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
		UsageInterval:    orDur(opts.UsageInterval, 20*time.Millisecond),
		Now:              opts.Now,
	}, nil
}

// waitMetrics waits until the replica's /metrics answers: its HTTP server starts beside the gRPC
// server, so health alone does not say it is listening yet.
func waitMetrics(t testing.TB, url string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 10*time.Millisecond, "the ledger's /metrics at %s never answered", url)
}

// Close shuts the replica down gracefully and waits for it (New's counterpart of Stop).
func (l *Ledger) Close() error {
	var err error
	l.stopOnce.Do(func() { err = l.replica.Stop() })
	return err
}

// Stop shuts the replica down gracefully and waits for it; calling it twice is fine.
func (l *Ledger) Stop(t testing.TB) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Errorf("ledger stopped with error: %v", err)
	}
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

// RawToken is a token whose payload is exactly claims (JSON text, so names may repeat), HS256-signed
// with Secret: a genuine signature over a hostile payload.
func RawToken(claims string) string {
	enc := base64.RawURLEncoding
	text := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(Secret))
	mac.Write([]byte(text))
	return text + "." + enc.EncodeToString(mac.Sum(nil))
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
	return ledgerv1.NewLedgerServiceClient(servertest.Dial(t, l.Addr, token))
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

// TwoShards starts two private PostgreSQL clusters for a ledger sharded in two ("a", "b") and
// returns their URLs by shard name and the TALLY_LEDGER_SHARDS value naming them (Options.Shards;
// shard a holds the directory).
func TwoShards(t testing.TB) (urls map[string]string, shardsVar string) {
	t.Helper()
	urls = map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range []string{"a", "b"} {
		wg.Go(func() {
			u := testenv.PrivatePostgres(t).URL()
			mu.Lock()
			defer mu.Unlock()
			urls[n] = u
		})
	}
	wg.Wait()
	return urls, "a=" + urls["a"] + " b=" + urls["b"]
}
