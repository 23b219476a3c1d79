package restfuzz_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/instances-metering/meteringtest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/notificationstest"
	"github.com/tallyhq/tally/services/payments/paymentstest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// webhookSecret signs the Stripe events of the fuzzed stack.
const webhookSecret = paymentstest.WebhookSecret

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
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return lis
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

// startStack starts every service through its harness (services/<svc>/<svc>test) and a real
// gateway in front of them.
func startStack(t *testing.T) *stack {
	t.Helper()
	logs := newLogWatch()
	s := &stack{logs: logs, grpcAddrs: map[string]string{}}

	pricing := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret, PollInterval: 100 * time.Millisecond, Logger: logs.logger("pricing")})
	s.grpcAddrs["pricing"] = pricing.Addr
	s.ledger = ledgertest.Start(t, ledgertest.Options{PricingAddr: pricing.Addr, Logger: logs.logger("ledger")})
	s.grpcAddrs["ledger"] = s.ledger.Addr
	notif := notificationstest.Start(t, notificationstest.Options{
		DatabaseURL: testenv.PostgresURL(t), LedgerAddr: s.ledger.Addr, Secret: ledgertest.Secret,
		SMTPAddr: testenv.Mailpit(t).SMTPAddr(), Logger: logs.logger("notifications"),
	})
	s.grpcAddrs["notifications"] = notif.Addr
	meter := meteringtest.Start(t, meteringtest.Options{
		Secret: ledgertest.Secret, LedgerAddr: s.ledger.Addr, PricingAddr: pricing.Addr, NotificationsAddr: notif.Addr,
		PollInterval: 500 * time.Millisecond, Logger: logs.logger("instances-metering"),
	})
	s.grpcAddrs["instances-metering"] = meter.Addr
	pay := paymentstest.Start(t, paymentstest.Options{Ledger: s.ledger, Stripe: true, Logger: logs.logger("payments")})
	s.grpcAddrs["payments"] = pay.Addr

	gwLogger := logs.logger("gateway")
	limits := server.DefaultHTTPLimits()
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{
		LedgerAddr: s.ledger.Addr, PricingAddr: pricing.Addr, PaymentsAddr: pay.Addr,
		InstancesAddr: meter.Addr, NotificationsAddr: notif.Addr,
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
	for _, name := range slices.Sorted(maps.Keys(s.grpcAddrs)) {
		require.NoError(t, serving(t.Context(), s.grpcAddrs[name]), "%s is unhealthy after the run", name)
	}
	resp, err := http.Get(s.gatewayURL + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the gateway is unhealthy after the run")
}
