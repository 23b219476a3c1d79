// Package paymentstest runs a real payments service (PostgreSQL, gRPC and the test-mode checkout
// on 127.0.0.1) for the tests of payments and of the services that call it. It is built on the
// same composition root as cmd/payments (the service package).
package paymentstest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/status"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/service"
)

// Test settings of every harness: the webhook secret signing deliveries and the console the
// checkout returns members to.
const (
	WebhookSecret = "whsec_payments_test_secret"
	ConsoleURL    = "http://console.test"
)

const unit = money.Nanos(money.NanosPerUnit)

// Options tune a test payments service; zero values take test-friendly defaults.
type Options struct {
	// Ledger is the ledger payments calls; Start starts a fresh one when it and LedgerAddr are
	// empty, New requires one of them.
	Ledger *ledgertest.Ledger
	// LedgerAddr overrides the ledger's address (e.g. a fault proxy in front of Ledger).
	LedgerAddr string
	// DatabaseURL shares a database between replicas; Start takes a fresh private one when
	// empty, New requires it.
	DatabaseURL string
	// Stripe runs checkouts against the Stripe API at StripeURL (stripe-mock when empty, Start
	// only); otherwise the local test-mode checkout is used.
	Stripe    bool
	StripeURL string
	// WebhookURL receives the test-mode checkout's deliveries; empty serves the harness's own
	// endpoint, which forwards them to HandleStripeWebhook as the gateway's route does.
	WebhookURL string
	// Auth replaces the HS256 verification with ledgertest.Secret (e.g. a JWKS of
	// authtest.Provider).
	Auth *server.AuthConfig
	// Logger defaults to errors on stderr (all levels with TALLY_TEST_LOG set).
	Logger *slog.Logger
	// Now is the business clock (service.Config.Now); nil is time.Now.
	Now func() time.Time
	// Configure, when set, adjusts the configuration last, before the service is built.
	Configure func(*service.Config)
	// Metrics serves the replica's Prometheus metrics at Payments.MetricsURL.
	Metrics bool
}

// Payments is a running payments replica.
type Payments struct {
	// Addr is the gRPC address; HTTPURL serves the test-mode checkout page; WebhookURL is where
	// test-mode deliveries go.
	Addr        string
	HTTPURL     string
	WebhookURL  string
	DatabaseURL string
	LedgerAddr  string
	// MetricsURL is the replica's /metrics when Options.Metrics is set.
	MetricsURL string
	// Ledger is the ledger Start started or was given (nil when New was given an address only).
	Ledger *ledgertest.Ledger

	svc      *service.Service
	replica  *servertest.Replica
	closers  []func()
	stopOnce sync.Once
	stopErr  error
}

// Config is the configuration the harness runs with, before Options.Configure.
func Config(o Options) service.Config {
	cfg := service.Config{
		DatabaseURL:         o.DatabaseURL,
		DBMaxConns:          20,
		Auth:                *cmp.Or(o.Auth, &server.AuthConfig{JWTSecret: ledgertest.Secret}),
		LedgerAddr:          o.LedgerAddr,
		StripeWebhookSecret: WebhookSecret,
		WebhookTolerance:    5 * time.Minute,
		WebhookURL:          o.WebhookURL,
		ConsoleURL:          ConsoleURL,
		// Tests sweep explicitly (SweepExpired); the background pass runs at start only.
		ExpirySweepInterval: time.Hour,
		TopUpMin:            5 * unit,
		TopUpMax:            10_000 * unit,
		ReconcileLookback:   72 * time.Hour,
		SellerName:          "Tally Test GmbH",
		SellerAddress:       "1 Ledger Street\nBerlin",
		SellerTaxID:         "DE123456789",
		SellerEmail:         "billing@tally.test",
		Now:                 o.Now,
	}
	if o.Stripe {
		cfg.StripeSecretKey = "sk_test_123"
		cfg.StripeAPIURL = o.StripeURL
	} else {
		cfg.TestMode = true
	}
	return cfg
}

// New starts a payments replica serving until Stop (or ctx is done) and waits until it is
// healthy. o.DatabaseURL and a ledger (o.Ledger or o.LedgerAddr) are required; with o.Stripe,
// so is o.StripeURL.
func New(ctx context.Context, o Options) (_ *Payments, err error) {
	if o.Ledger != nil {
		o.LedgerAddr = cmp.Or(o.LedgerAddr, o.Ledger.Addr)
	}
	switch {
	case o.DatabaseURL == "":
		return nil, errors.New("paymentstest: a database URL is required")
	case o.LedgerAddr == "":
		return nil, errors.New("paymentstest: a ledger is required")
	case o.Stripe && o.StripeURL == "":
		return nil, errors.New("paymentstest: a Stripe API URL is required")
	}
	if o.Logger == nil {
		o.Logger = defaultLogger()
	}
	p := &Payments{DatabaseURL: o.DatabaseURL, LedgerAddr: o.LedgerAddr, Ledger: o.Ledger}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	lis, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() { _ = lis.Close() })
	httpLis, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() { _ = httpLis.Close() })
	p.Addr, p.HTTPURL = lis.Addr().String(), "http://"+httpLis.Addr().String()
	if o.WebhookURL == "" {
		hook, err := p.webhookEndpoint()
		if err != nil {
			return nil, err
		}
		o.WebhookURL = hook
	}
	p.WebhookURL = o.WebhookURL

	cfg := Config(o)
	cfg.PublicURL, cfg.HTTPListener = p.HTTPURL, httpLis
	if o.Metrics {
		if cfg.MetricsAddr, p.MetricsURL, err = servertest.MetricsAddr(); err != nil {
			return nil, err
		}
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	p.svc, err = service.New(ctx, cfg, o.Logger)
	if err != nil {
		return nil, err
	}
	p.replica, err = servertest.StartReplica(ctx, servertest.ReplicaConfig{
		Name: "payments", Listener: lis, Serve: p.svc.Serve, Timeout: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Start runs a payments replica until the test ends (or Stop), with a fresh ledger, database
// and stripe-mock where o leaves them empty.
func Start(t testing.TB, o Options) *Payments {
	t.Helper()
	if o.Ledger == nil && o.LedgerAddr == "" {
		o.Ledger = ledgertest.Start(t, ledgertest.Options{})
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = testenv.PostgresURL(t)
	}
	if o.Stripe && o.StripeURL == "" {
		o.StripeURL = testenv.StripeMock(t).URL()
	}
	p, err := New(t.Context(), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop()) })
	return p
}

// webhookEndpoint serves what the gateway's webhook route does: the raw body and the
// Stripe-Signature header to HandleStripeWebhook, its status mapped to HTTP.
func (p *Payments) webhookEndpoint() (string, error) {
	conn, err := rpcclient.Dial(p.Addr, "")
	if err != nil {
		return "", err
	}
	p.closers = append(p.closers, func() { _ = conn.Close() })
	public := paymentsv1.NewPaymentsServiceClient(conn)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, err = public.HandleStripeWebhook(r.Context(), &paymentsv1.HandleStripeWebhookRequest{Payload: body, Signature: r.Header.Get("Stripe-Signature")})
		if err != nil {
			http.Error(w, err.Error(), runtime.HTTPStatusFromCode(status.Code(err)))
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	p.closers = append(p.closers, hook.Close)
	return hook.URL, nil
}

// Client is a PaymentsService client calling with token ("" for none), closed when the test ends.
func (p *Payments) Client(t testing.TB, token string) paymentsv1.PaymentsServiceClient {
	t.Helper()
	return paymentsv1.NewPaymentsServiceClient(servertest.Dial(t, p.Addr, token))
}

// SweepExpired runs one pass of the expiry sweep now.
func (p *Payments) SweepExpired(ctx context.Context) (app.ExpiryReport, error) {
	return p.svc.SweepExpired(ctx)
}

// SweepExpiredSetups runs one pass of the setup sessions' expiry sweep now.
func (p *Payments) SweepExpiredSetups(ctx context.Context) (app.SetupExpiryReport, error) {
	return p.svc.SweepExpiredSetups(ctx)
}

// Reconcile runs one reconciliation pass now.
func (p *Payments) Reconcile(ctx context.Context) (app.ReconcileReport, error) {
	return p.svc.Reconcile(ctx)
}

// ReconcileClaimed runs the current period's reconciliation pass if this replica claims it first.
func (p *Payments) ReconcileClaimed(ctx context.Context, interval time.Duration) (bool, app.ReconcileReport, error) {
	return p.svc.ReconcileClaimed(ctx, interval)
}

// RetryPending runs one pass of the retry worker now.
func (p *Payments) RetryPending(ctx context.Context) (app.RetryReport, error) {
	return p.svc.RetryPending(ctx)
}

// Stop shuts the replica down gracefully and waits for it; calling it again returns the first
// answer.
func (p *Payments) Stop() error {
	p.stopOnce.Do(func() {
		switch err := p.replica.Stop(); {
		case errors.Is(err, servertest.ErrNotStopped):
			p.stopErr = err
		case err != nil:
			p.stopErr = fmt.Errorf("payments stopped with error: %w", err)
		}
		p.close()
	})
	return p.stopErr
}

func (p *Payments) close() {
	if p.svc != nil {
		p.svc.Close()
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

func defaultLogger() *slog.Logger {
	level := slog.LevelError
	if os.Getenv("TALLY_TEST_LOG") != "" {
		level = slog.LevelDebug // TALLY_TEST_LOG=1 shows every log line while debugging a test
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
