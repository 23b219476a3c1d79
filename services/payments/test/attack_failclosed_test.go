package test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// TestAttack_FailClosed_FutureDatedWebhook replays a correctly signed delivery dated beyond the
// tolerance in the future (signed ahead of time, to stay valid longer than a real one): it is
// refused, nothing is credited and the event id is not consumed.
func TestAttack_FailClosed_FutureDatedWebhook(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 15*unit)
	body := sessionEvent{id: "evt_ahead_1", typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs,
		amountMinor: 1500}.payload(t)

	for _, tc := range []struct {
		name string
		sig  string
	}{
		{"beyond the tolerance", stripeevent.Sign(body, webhookSecret, time.Now().Add(6*time.Minute))},
		{"a year ahead", stripeevent.Sign(body, webhookSecret, time.Now().AddDate(1, 0, 0))},
		{"a second, earlier timestamp in front", "t=" + strconv.FormatInt(time.Now().Unix(), 10) + "," +
			stripeevent.Sign(body, webhookSecret, time.Now().Add(time.Hour))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.deliverSigned(t, body, tc.sig)
			requireCode(t, err, codes.InvalidArgument)
			require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))
			require.Zero(t, e.credits(t, "acme"))
			require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
			require.Empty(t, e.reviewItems(t))
		})
	}
	// A sender's clock slightly ahead, within the tolerance, is fine; the event id was not consumed.
	_, err := e.deliverSigned(t, body, stripeevent.Sign(body, webhookSecret, time.Now().Add(time.Minute)))
	require.NoError(t, err)
	require.Equal(t, 15*unit, nanos(t, e.balance(t, "acme").GetBalance()))
}

// TestAttack_FailClosed_PaidSessionWithoutAmount delivers signed "paid" sessions that report no
// amount or no currency: the amount check is never skipped, so each is a mismatch for review and
// nothing is credited.
func TestAttack_FailClosed_PaidSessionWithoutAmount(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	for _, tc := range []struct {
		name   string
		fields map[string]any
	}{
		{"amount and currency missing", map[string]any{}},
		{"amount and currency null", map[string]any{"amount_total": nil, "currency": nil}},
		{"zero amount", map[string]any{"amount_total": 0, "currency": "usd"}},
		{"no currency", map[string]any{"amount_total": 2500, "currency": ""}},
		{"currency missing", map[string]any{"amount_total": 2500}},
		{"negative amount", map[string]any{"amount_total": -2500, "currency": "usd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := e.checkout(t, "acme", 25*unit)
			obj := map[string]any{
				"id": cs.GetSessionId(), "object": "checkout.session", "status": "complete", "payment_status": "paid", "mode": "payment",
				"payment_intent": "pi_" + cs.GetPaymentId()[:8], "payment_method_types": []string{"card"}, "client_reference_id": "acme",
				"metadata": map[string]string{payment.MetaPaymentID: cs.GetPaymentId(), payment.MetaOrgID: "acme"},
			}
			for k, v := range tc.fields {
				obj[k] = v
			}
			body, err := stripeevent.EventPayload("", payment.EventCheckoutCompleted, time.Now(), obj)
			require.NoError(t, err)
			e.mustDeliver(t, body, app.OutcomeProcessed)
			require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))
			require.Zero(t, e.credits(t, "acme"))
			p := e.payment(t, "acme", cs.GetPaymentId())
			require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, p.GetStatus())
			require.Empty(t, p.GetInvoiceNumber())
			require.True(t, hasReview(e.reviewItems(t), cs.GetPaymentId(), payment.ReviewAmountMismatch))
		})
	}
}

// TestAttack_FailClosed_PayEndpointOnlyInTestMode looks for the test-mode pay endpoint, which
// grants credits for nothing, where it must not be: a Stripe-mode payments service does not even
// start its HTTP listener, and a test-mode service on the same database does not pay a Stripe
// payment's session (404).
func TestAttack_FailClosed_PayEndpointOnlyInTestMode(t *testing.T) {
	t.Parallel()
	live := start(t, options{stripe: true})
	cs := live.checkout(t, "acme", 20*unit)
	client := noRedirectClient()
	client.Timeout = 5 * time.Second

	require.Eventually(t, func() bool {
		resp, err := client.Post(live.httpURL+"/checkout/test/"+cs.GetSessionId()+"/pay", "application/x-www-form-urlencoded", nil)
		if err == nil {
			_ = resp.Body.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	}, 10*time.Second, 20*time.Millisecond, "nothing listens on the HTTP address outside test mode")

	local := start(t, options{ledger: live.ledger, dbURL: live.dbURL})
	for _, path := range []string{"/checkout/test/" + cs.GetSessionId() + "/pay", "/checkout/test/" + cs.GetSessionId()} {
		method := http.MethodPost
		if !strings.HasSuffix(path, "/pay") {
			method = http.MethodGet
		}
		req, err := http.NewRequestWithContext(t.Context(), method, local.httpURL+path, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
	require.Zero(t, nanos(t, live.balance(t, "acme").GetBalance()))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, live.payment(t, "acme", cs.GetPaymentId()).GetStatus())
}

// TestAttack_FailClosed_PaymentsWithoutStripeSecrets starts the real payments binary alone, in
// production mode (no TALLY_ENV): without both Stripe secrets it exits non-zero with one clear
// line; in development without them it runs the test-mode checkout; in production with them it
// serves gRPC and no HTTP listener at all.
func TestAttack_FailClosed_PaymentsWithoutStripeSecrets(t *testing.T) {
	t.Parallel()
	bin := buildPayments(t)
	base := map[string]string{
		"DATABASE_URL":     "postgres://nobody@127.0.0.1:1/none",
		"TALLY_JWT_SECRET": "a-production-secret-of-at-least-32-bytes!",
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no Stripe secrets", map[string]string{}, "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required"},
		{"a key without webhook secret", map[string]string{"STRIPE_SECRET_KEY": "sk_live_x"},
			"STRIPE_WEBHOOK_SECRET is required when STRIPE_SECRET_KEY is set"},
		{"a webhook secret without key", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"}, "STRIPE_SECRET_KEY is required"},
		{"the public development webhook secret", map[string]string{"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_tally_dev_secret"},
			"must not be the public development secret"},
		{"test mode refused explicitly", map[string]string{"TALLY_PAYMENTS_TEST_MODE": "false"}, "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = envList(base, tc.env)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "payments must exit, stderr: %s", stderr.String())
			require.NotZero(t, exit.ExitCode())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			require.Len(t, lines, 1, "one clear line: %q", stderr.String())
			require.Contains(t, lines[0], tc.want)
		})
	}

	t.Run("development without secrets runs the test-mode checkout", func(t *testing.T) {
		t.Parallel()
		l := ledgertest.Start(t, ledgertest.Options{})
		grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
		runPayments(t, bin, map[string]string{"TALLY_ENV": "development", "DATABASE_URL": testenv.PostgresURL(t), "TALLY_LEDGER_ADDR": l.Addr,
			"TALLY_PAYMENTS_GRPC_ADDR": grpcAddr, "TALLY_PAYMENTS_HTTP_ADDR": httpAddr, "TALLY_RECONCILE_INTERVAL": "0"})
		require.Eventually(t, func() bool {
			resp, err := http.Get("http://" + httpAddr + "/healthz")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 10*time.Second, 20*time.Millisecond)
	})

	t.Run("production with both secrets has no HTTP listener", func(t *testing.T) {
		t.Parallel()
		l := ledgertest.Start(t, ledgertest.Options{})
		grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
		runPayments(t, bin, map[string]string{"DATABASE_URL": testenv.PostgresURL(t), "TALLY_LEDGER_ADDR": l.Addr,
			"TALLY_JWT_SECRET": base["TALLY_JWT_SECRET"], "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
			"TALLY_STRIPE_API_URL": testenv.StripeMock(t).URL(), "TALLY_RECONCILE_INTERVAL": "0",
			"TALLY_PAYMENTS_GRPC_ADDR": grpcAddr, "TALLY_PAYMENTS_HTTP_ADDR": httpAddr})
		_, err := net.DialTimeout("tcp", httpAddr, 2*time.Second)
		require.Error(t, err, "the test-mode HTTP listener is not started")
	})
}

// buildPayments builds cmd/payments into a temporary directory.
func buildPayments(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "payments")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tallyhq/tally/services/payments/cmd/payments").CombinedOutput()
	require.NoError(t, err, "building payments: %s", out)
	return bin
}

// runPayments starts the payments binary with exactly env (plus PATH), waits until its gRPC
// health check at env's TALLY_PAYMENTS_GRPC_ADDR answers SERVING, and stops it at cleanup.
func runPayments(t *testing.T, bin string, env map[string]string) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = envList(env)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("payments output:\n%s", stderr.String())
		}
	})
	conn, err := rpcclient.Dial(env["TALLY_PAYMENTS_GRPC_ADDR"], "")
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	hc := grpc_health_v1.NewHealthClient(conn)
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
			exited <- err
			require.FailNow(t, "payments exited", "err %v, output:\n%s", err, stderr.String())
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING
	}, 60*time.Second, 50*time.Millisecond, "payments did not become healthy")
}

// envList is PATH and the given variables, later maps winning.
func envList(ms ...map[string]string) []string {
	merged := map[string]string{"PATH": os.Getenv("PATH")}
	for _, m := range ms {
		for k, v := range m {
			merged[k] = v
		}
	}
	out := make([]string, 0, len(merged))
	for k, v := range merged {
		out = append(out, k+"="+v)
	}
	return out
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
