package restfuzz_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	instances "github.com/tallyhq/tally/services/instances-metering/service"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	notifications "github.com/tallyhq/tally/services/notifications/service"
	payments "github.com/tallyhq/tally/services/payments/service"
	pricing "github.com/tallyhq/tally/services/pricing/service"
)

// webhookSecret signs the Stripe events of the fuzzed stack.
const webhookSecret = "whsec_restfuzz_secret"

// logWatch is a slog handler that keeps what a fuzz run must not produce: panics anywhere, and
// the servers' "rpc failed" (an Internal, Unknown or DataLoss answer), plus other errors to show.
type logWatch struct {
	service string
	attrs   []slog.Attr
	mu      *sync.Mutex
	panics  *[]string
	failed  *[]string
	errors  *[]string
}

func newLogWatch() *logWatch {
	return &logWatch{mu: &sync.Mutex{}, panics: &[]string{}, failed: &[]string{}, errors: &[]string{}}
}

func (w *logWatch) logger(service string) *slog.Logger {
	c := *w
	c.service = service
	return slog.New(&c)
}

func (w *logWatch) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", w.service, r.Level, r.Message)
	for _, a := range w.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	line := b.String()
	if len(line) > 2000 {
		line = line[:2000] + "…"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case strings.Contains(strings.ToLower(line), "panic"):
		*w.panics = append(*w.panics, line)
	case r.Message == "rpc failed":
		*w.failed = append(*w.failed, line)
	case r.Level >= slog.LevelError && len(*w.errors) < 50:
		*w.errors = append(*w.errors, line)
	}
	return nil
}

func (w *logWatch) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *w
	c.attrs = append(append([]slog.Attr{}, w.attrs...), attrs...)
	return &c
}

func (w *logWatch) WithGroup(string) slog.Handler { return w }

func (w *logWatch) snapshot() (panics, failed, errs []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string{}, *w.panics...), append([]string{}, *w.failed...), append([]string{}, *w.errors...)
}

// stack is every tally service behind a real gateway, on loopback ports, against real
// PostgreSQL, Redis, mailpit and stripe-mock.
type stack struct {
	gatewayURL string
	ledger     *ledgertest.Ledger
	grpcAddrs  map[string]string
	logs       *logWatch
}

// listen reserves a loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return lis
}

// runService runs a service until the test ends.
func runService(t *testing.T, name string, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s stopped with error: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop", name)
		}
	})
}

// serving reports whether the gRPC server at addr is SERVING.
func serving(ctx context.Context, addr string) error {
	conn, err := rpcclient.Dial(addr, "")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("%s is %s", addr, resp.GetStatus())
	}
	return nil
}

func waitServing(t *testing.T, name, addr string) {
	t.Helper()
	require.Eventually(t, func() bool { return serving(t.Context(), addr) == nil }, 60*time.Second, 20*time.Millisecond, "%s did not become healthy", name)
}

func startStack(t *testing.T) *stack {
	t.Helper()
	logs := newLogWatch()
	s := &stack{logs: logs, grpcAddrs: map[string]string{}}
	auth := server.AuthConfig{JWTSecret: ledgertest.Secret}

	pricingLis := listen(t)
	pricingCfg := pricing.Config{DatabaseURL: testenv.PostgresURL(t), PollInterval: 100 * time.Millisecond, Auth: auth}
	runService(t, "pricing", func(ctx context.Context) error {
		return pricing.Run(ctx, pricingCfg, pricingLis, logs.logger("pricing"))
	})
	s.grpcAddrs["pricing"] = pricingLis.Addr().String()
	waitServing(t, "pricing", s.grpcAddrs["pricing"])

	s.ledger = ledgertest.Start(t, ledgertest.Options{PricingAddr: s.grpcAddrs["pricing"], Logger: logs.logger("ledger")})
	s.grpcAddrs["ledger"] = s.ledger.Addr

	mail := testenv.Mailpit(t)
	host, port, err := net.SplitHostPort(mail.SMTPAddr())
	require.NoError(t, err)
	smtpPort, err := strconv.Atoi(port)
	require.NoError(t, err)
	notifLis := listen(t)
	notifCfg := notifications.Config{
		DatabaseURL: testenv.PostgresURL(t), Auth: auth, LedgerAddr: s.ledger.Addr,
		ConsoleURL:  "https://app.tally.test",
		SendWorkers: 1, PollInterval: 100 * time.Millisecond, RetryBase: 100 * time.Millisecond, RetryMax: time.Second, MaxAttempts: 5,
		LeaseInterval: 200 * time.Millisecond, EventBatch: 500, ReminderInterval: time.Second, ExpiryNotice: 7 * 24 * time.Hour, DBMaxConns: 10,
	}
	// The SMTP settings' type is internal to notifications: set its fields one by one.
	notifCfg.SMTP.Host, notifCfg.SMTP.Port, notifCfg.SMTP.TLS = host, smtpPort, "none"
	notifCfg.SMTP.From, notifCfg.SMTP.Timeout = "Tally <n@tally.test>", 5*time.Second
	runService(t, "notifications", func(ctx context.Context) error {
		return notifications.Run(ctx, notifCfg, notifLis, logs.logger("notifications"))
	})
	s.grpcAddrs["notifications"] = notifLis.Addr().String()

	instLis := listen(t)
	instCfg := instances.Config{
		DatabaseURL: testenv.PostgresURL(t), DBMaxConns: 8, Auth: auth,
		LedgerAddr: s.ledger.Addr, PricingAddr: s.grpcAddrs["pricing"], NotificationsAddr: s.grpcAddrs["notifications"],
		BillingPeriod: time.Hour, PollInterval: 500 * time.Millisecond,
	}
	runService(t, "instances-metering", func(ctx context.Context) error {
		return instances.Run(ctx, instCfg, instLis, logs.logger("instances-metering"))
	})
	s.grpcAddrs["instances-metering"] = instLis.Addr().String()

	payLis, payHTTP := listen(t), listen(t)
	payCfg := payments.Config{
		DatabaseURL: testenv.PostgresURL(t), DBMaxConns: 10, Auth: auth, LedgerAddr: s.ledger.Addr,
		StripeSecretKey: "sk_test_123", StripeAPIURL: testenv.StripeMock(t).URL(), StripeWebhookSecret: webhookSecret,
		WebhookTolerance: 5 * time.Minute, WebhookURL: "http://127.0.0.1:1/v1/webhooks/stripe",
		PublicURL: "http://" + payHTTP.Addr().String(), HTTPListener: payHTTP,
		ConsoleURL: "http://console.test",
		TopUpMin:   5 * money.NanosPerUnit, TopUpMax: 10_000 * money.NanosPerUnit, ReconcileLookback: time.Hour, SellerName: "Tally Fuzz",
	}
	runService(t, "payments", func(ctx context.Context) error { return payments.Run(ctx, payCfg, payLis, logs.logger("payments")) })
	s.grpcAddrs["payments"] = payLis.Addr().String()
	for _, name := range []string{"notifications", "instances-metering", "payments"} {
		waitServing(t, name, s.grpcAddrs[name])
	}

	gwLogger := logs.logger("gateway")
	limits := server.DefaultHTTPLimits()
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{
		LedgerAddr: s.ledger.Addr, PricingAddr: s.grpcAddrs["pricing"], PaymentsAddr: s.grpcAddrs["payments"],
		InstancesAddr: s.grpcAddrs["instances-metering"], NotificationsAddr: s.grpcAddrs["notifications"],
		Logger: gwLogger, Limits: limits,
	})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	gwLis := listen(t)
	srv := limits.Server(gwLis.Addr().String(), h, gwLogger)
	go func() { _ = srv.Serve(gwLis) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.gatewayURL = "http://" + gwLis.Addr().String()
	return s
}

// healthy checks every service's gRPC health and the gateway's /healthz.
func (s *stack) healthy(t *testing.T) {
	t.Helper()
	for _, name := range sortedNames(s.grpcAddrs) {
		require.NoError(t, serving(t.Context(), s.grpcAddrs[name]), "%s is unhealthy after the run", name)
	}
	resp, err := http.Get(s.gatewayURL + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the gateway is unhealthy after the run")
}

func sortedNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
