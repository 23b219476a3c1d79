package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/obscheck"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/gateway/internal/service"
	"github.com/tallyhq/tally/services/instances-metering/meteringtest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/notificationstest"
	"github.com/tallyhq/tally/services/payments/paymentstest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// metricsStack is every service with its /metrics on, behind a gateway run by service.Run.
type metricsStack struct {
	gatewayURL string
	// metrics is each /metrics URL by service name.
	metrics  map[string]string
	ledger   *ledgertest.Ledger
	pricing  *pricingtest.Pricing
	meter    *meteringtest.Meter
	payments *paymentstest.Payments
}

func startMetricsStack(t *testing.T) metricsStack {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	pricing := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret, Metrics: true, Logger: quiet})
	l := ledgertest.Start(t, ledgertest.Options{PricingAddr: pricing.Addr, Metrics: true})
	notif := notificationstest.Start(t, notificationstest.Options{
		DatabaseURL: testenv.PostgresURL(t), LedgerAddr: l.Addr, Secret: ledgertest.Secret,
		SMTPAddr: testenv.Mailpit(t).SMTPAddr(), Metrics: true, Logger: quiet,
	})
	meter := meteringtest.Start(t, meteringtest.Options{
		Secret: ledgertest.Secret, LedgerAddr: l.Addr, PricingAddr: pricing.Addr, NotificationsAddr: notif.Addr, Metrics: true, Logger: quiet,
	})
	// Payments' test-mode checkout delivers its webhooks to the gateway, whose address must be
	// known first.
	port, err := localstack.FreePort()
	require.NoError(t, err)
	gatewayURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	pay := paymentstest.Start(t, paymentstest.Options{Ledger: l, WebhookURL: gatewayURL + "/v1/webhooks/stripe", Metrics: true, Logger: quiet})

	metricsAddr, gatewayMetrics, err := servertest.MetricsAddr()
	require.NoError(t, err)
	cfg := service.Config{
		Addr: fmt.Sprintf("127.0.0.1:%d", port), MetricsAddr: metricsAddr,
		Gateway: gateway.Config{
			LedgerAddr: l.Addr, PricingAddr: pricing.Addr, PaymentsAddr: pay.Addr, InstancesAddr: meter.Addr,
			NotificationsAddr: notif.Addr, Logger: quiet, Limits: server.DefaultHTTPLimits(),
		},
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, quiet) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done, "the gateway stops cleanly")
	})
	require.Eventually(t, func() bool { return get(t, gatewayURL+"/healthz") == http.StatusOK }, 30*time.Second, 20*time.Millisecond)
	return metricsStack{
		gatewayURL: gatewayURL, ledger: l, pricing: pricing, meter: meter, payments: pay,
		metrics: map[string]string{
			"ledger": l.MetricsURL, "pricing": pricing.MetricsURL, "payments": pay.MetricsURL,
			"instances-metering": meter.MetricsURL, "notifications": notif.MetricsURL, "gateway": gatewayMetrics,
		},
	}
}

// TestMetricsOfARunningStack is issue 15's metrics check: the whole stack with metrics on, a
// top-up through the test-mode checkout and the gateway's webhook route, debits (committed,
// replayed, refused for funds), a rental, a quote and a price change; then every /metrics is
// scraped and each domain metric must be there with a value that follows from that traffic.
func TestMetricsOfARunningStack(t *testing.T) {
	t.Parallel()
	s := startMetricsStack(t)
	member := ledgertest.Token(t, auth.Claims{Subject: "user-ada", OrgID: "acme", Email: "ada@acme.test", Name: "Ada Lovelace", Roles: []auth.Role{auth.RoleMember}})
	ops := ledgertest.OpsToken(t)

	// Ada wants an email below 20 USD (one now: acme has nothing); the top-up takes acme to 25 USD
	// (re-armed), the debits below 20 USD again (the second email).
	code, body := do(t, http.MethodPut, s.gatewayURL+"/v1/orgs/acme/members/me/notification-settings", member,
		`{"lowCreditAlertEnabled":true,"lowCreditThreshold":{"currencyCode":"USD","units":"20"}}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	topUp(t, s, member)

	// Three debits of 2 USD (the balance crosses 20 USD), a replay, one refused for want of funds.
	backend := s.ledger.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	for i := range 3 {
		_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: money.ToProto(2*money.NanosPerUnit, "USD"), IdempotencyKey: "call-" + strconv.Itoa(i)})
		require.NoError(t, err)
	}
	_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: money.ToProto(2*money.NanosPerUnit, "USD"), IdempotencyKey: "call-0"})
	require.NoError(t, err)
	_, err = backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: money.ToProto(1000*money.NanosPerUnit, "USD"), IdempotencyKey: "too-much", RequireFunds: true})
	require.Error(t, err)

	// A rental (its first period is charged at start), a quote, a price change.
	_, err = s.meter.Client(t, ops).StartMetering(t.Context(), &instancesv1.StartMeteringRequest{
		InstanceId: "i-metrics-1", OrgId: "acme", InstanceType: "cpu-8x32", IdempotencyKey: "metrics-rental-1",
	})
	require.NoError(t, err)
	code, body = do(t, http.MethodPost, s.gatewayURL+"/v1/pricing/quote", "", `{"modelId":"whisper-large-v3","usage":{"audio_seconds":"90"}}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	_, err = s.pricing.Client(t, s.pricing.OpsToken(t)).SetModelPrice(t.Context(), &pricingv1.SetModelPriceRequest{
		ModelId: "tts-standard", DisplayName: "Tally Voice standard (text to speech)", Modality: pricingv1.Modality_MODALITY_TEXT_TO_SPEECH,
		Dimensions: []*pricingv1.PriceDimension{{Unit: "characters", Price: money.ToProto(12_000_000, "USD"), Per: 1000}},
		Reason:     "metrics test", IdempotencyKey: "metrics-price-1",
	})
	require.NoError(t, err)

	// Sampled and followed values settle on their own schedule (at most a sampling period).
	var last map[string]map[string]*dto.MetricFamily
	var missing []string
	require.Eventually(t, func() bool {
		last = scrapeAll(t, s.metrics)
		missing = unmet(last, expectations())
		return len(missing) == 0
	}, 45*time.Second, 250*time.Millisecond, "unmet: %v", &missing)

	requireBoundedRoutes(t, last["gateway"])
	requireEveryCombination(t, last)

	// Every metric the dashboards and alert rules use is exported by this stack.
	// (go test runs in this package's directory, services/gateway/internal/gateway.)
	used, err := obscheck.UsedMetrics(filepath.Join("..", "..", "..", "..", "deploy", "observability"))
	require.NoError(t, err)
	require.NotEmpty(t, used)
	exported := map[string]bool{}
	for _, fams := range last {
		for name := range fams {
			exported[name] = true
		}
	}
	require.Empty(t, obscheck.Unexported(used, exported), "used by deploy/observability, exported by no service")
}

// expectation is one series that must be exported, with the least value the traffic gives it
// (a histogram's count), or exactly a value.
type expectation struct {
	service, name string
	labels        map[string]string
	atLeast       float64
	exactly       *float64
}

func exactly(v float64) *float64 { return &v }

func expectations() []expectation {
	const usd = float64(money.NanosPerUnit)
	lbl := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []expectation{
		{service: "ledger", name: "tally_ledger_debits_total", labels: lbl("result", "committed"), atLeast: 3},
		{service: "ledger", name: "tally_ledger_debits_total", labels: lbl("result", "replayed"), atLeast: 1},
		{service: "ledger", name: "tally_ledger_debits_total", labels: lbl("result", "insufficient_funds"), atLeast: 1},
		{service: "ledger", name: "tally_ledger_debits_total", labels: lbl("result", "failed"), exactly: exactly(0)},
		{service: "ledger", name: "tally_ledger_credits_total", labels: lbl("kind", "payment", "result", "committed"), exactly: exactly(1)},
		{service: "ledger", name: "tally_ledger_amount_nanos_total", labels: lbl("currency", "USD", "direction", "credit"), exactly: exactly(25 * usd)},
		{service: "ledger", name: "tally_ledger_amount_nanos_total", labels: lbl("currency", "USD", "direction", "debit"), atLeast: 6 * usd},
		{service: "ledger", name: "tally_ledger_commit_batch_size", atLeast: 5},
		{service: "ledger", name: "tally_ledger_commit_duration_seconds", atLeast: 5},
		{service: "ledger", name: "tally_ledger_commit_queue_depth", exactly: exactly(0)},
		// Present from the start; not necessarily 0: on a loaded machine a cache write can run past
		// its deadline, which is what the counter is for (the cache then falls back, never opens).
		{service: "ledger", name: "tally_ledger_redis_errors_total", labels: lbl("op", "read")},
		{service: "ledger", name: "tally_ledger_redis_errors_total", labels: lbl("op", "write")},
		{service: "ledger", name: "tally_ledger_outbox_head", atLeast: 5},
		{service: "ledger", name: "tally_ledger_outbox_head_timestamp_seconds", atLeast: 1},
		{service: "ledger", name: "tally_ledger_watch_held_streams", labels: lbl("shard", "main"), exactly: exactly(0)},
		{service: "ledger", name: "tally_ledger_usage_lag_events", exactly: exactly(0)},
		{service: "ledger", name: "tally_ledger_cache_updates_total", labels: lbl("result", "written"), atLeast: 1},
		{service: "ledger", name: "grpc_server_handled_total", labels: lbl("service", "ledger", "method", "/tally.ledger.v1.LedgerService/Debit", "code", "OK"), atLeast: 4},
		{service: "payments", name: "tally_payments_webhook_events_total", labels: lbl("type", "checkout.session.completed", "outcome", "processed"), exactly: exactly(1)},
		{service: "payments", name: "tally_payments_checkouts_total", labels: lbl("result", "created"), exactly: exactly(1)},
		// Present; 0 or 1: on a slow machine reconciliation may fulfil the top-up before its webhook.
		{service: "payments", name: "tally_payments_reconcile_fixes_total", labels: lbl("kind", "fulfilled")},
		{service: "payments", name: "tally_payments_review_items_open", exactly: exactly(0)},
		{service: "instances-metering", name: "tally_metering_rentals", labels: lbl("state", "running"), exactly: exactly(1)},
		{service: "instances-metering", name: "tally_metering_periods_charged_total", labels: lbl("result", "charged"), atLeast: 1},
		{service: "instances-metering", name: "tally_metering_suspensions_total", labels: lbl("reason", "insufficient_credits"), exactly: exactly(0)},
		{service: "notifications", name: "tally_notifications_email_attempts_total", labels: lbl("kind", "low_credit", "result", "sent"), exactly: exactly(2)},
		{service: "notifications", name: "tally_notifications_ledger_cursor", labels: lbl("shard", "main"), atLeast: 5},
		{service: "notifications", name: "tally_notifications_ledger_event_timestamp_seconds", labels: lbl("shard", "main"), atLeast: 1},
		{service: "pricing", name: "tally_pricing_quotes_total", labels: lbl("result", "ok"), atLeast: 1},
		{service: "pricing", name: "tally_pricing_price_changes_applied_total", labels: lbl("kind", "model", "result", "applied"), exactly: exactly(1)},
		{service: "pricing", name: "tally_pricing_catalog_version", atLeast: 2},
		{service: "gateway", name: "tally_http_requests_total", labels: lbl("route", "/v1/orgs/{org_id}/balance", "method", "GET", "code", "200"), atLeast: 1},
		{service: "gateway", name: "tally_http_requests_total", labels: lbl("route", "/v1/webhooks/stripe", "method", "POST", "code", "200"), exactly: exactly(1)},
		{service: "gateway", name: "tally_http_requests_total", labels: lbl("route", "/healthz", "method", "GET", "code", "200"), atLeast: 1},
		{service: "gateway", name: "tally_http_request_duration_seconds", labels: lbl("route", "/v1/pricing/quote", "method", "POST"), exactly: exactly(1)},
		{service: "gateway", name: "tally_http_requests_in_flight", exactly: exactly(0)},
		{service: "gateway", name: "tally_gateway_backend_up", labels: lbl("backend", "ledger"), exactly: exactly(1)},
		{service: "gateway", name: "tally_gateway_backend_up", labels: lbl("backend", "pricing"), exactly: exactly(1)},
		{service: "gateway", name: "tally_gateway_backend_up", labels: lbl("backend", "payments"), exactly: exactly(1)},
		{service: "gateway", name: "tally_gateway_backend_up", labels: lbl("backend", "instances-metering"), exactly: exactly(1)},
		{service: "gateway", name: "tally_gateway_backend_up", labels: lbl("backend", "notifications"), exactly: exactly(1)},
	}
}

// unmet returns what of want the scrapes do not show.
func unmet(scrapes map[string]map[string]*dto.MetricFamily, want []expectation) []string {
	var out []string
	for _, e := range want {
		v, ok := value(scrapes[e.service][e.name], e.labels)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: %s%v missing", e.service, e.name, e.labels))
		case e.exactly != nil && v != *e.exactly:
			out = append(out, fmt.Sprintf("%s: %s%v = %v, want %v", e.service, e.name, e.labels, v, *e.exactly))
		case e.exactly == nil && v < e.atLeast:
			out = append(out, fmt.Sprintf("%s: %s%v = %v, want at least %v", e.service, e.name, e.labels, v, e.atLeast))
		}
	}
	return out
}

// value is the value of the series of f with labels (a histogram's sample count).
func value(f *dto.MetricFamily, labels map[string]string) (float64, bool) {
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		v, ok := want[l.GetName()]
		if ok && v != l.GetValue() {
			return false
		}
		if ok {
			found++
		}
	}
	return found == len(want)
}

// requireBoundedRoutes: the gateway's routes are patterns, never paths with an org id in them.
func requireBoundedRoutes(t *testing.T, gw map[string]*dto.MetricFamily) {
	t.Helper()
	for _, m := range gw["tally_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" {
				require.NotContains(t, l.GetValue(), "acme", "route labels are patterns")
			}
		}
	}
}

// requireEveryCombination: label values nothing used yet are exported at 0 from the start.
func requireEveryCombination(t *testing.T, scrapes map[string]map[string]*dto.MetricFamily) {
	t.Helper()
	for _, c := range []struct {
		service, name string
		series        int
	}{
		{"ledger", "tally_ledger_debits_total", 5},
		{"ledger", "tally_ledger_credits_total", 12},
		{"payments", "tally_payments_webhook_events_total", 45},
		{"payments", "tally_payments_recharges_total", 5},
		{"payments", "tally_payments_checkouts_total", 3},
		{"instances-metering", "tally_metering_rentals", 4},
		{"instances-metering", "tally_metering_periods_charged_total", 5},
		{"notifications", "tally_notifications_email_attempts_total", 24},
		{"pricing", "tally_pricing_price_changes_applied_total", 4},
		{"pricing", "tally_pricing_quotes_total", 2},
	} {
		require.Len(t, scrapes[c.service][c.name].GetMetric(), c.series, "%s: %s", c.service, c.name)
	}
}

// topUp buys 25 USD for acme through the test-mode checkout: the webhook reaches payments
// through the gateway's route.
func topUp(t *testing.T, s metricsStack, member string) {
	t.Helper()
	code, session := do(t, http.MethodPost, s.gatewayURL+"/v1/orgs/acme/checkout-sessions", member, `{"amount":{"currencyCode":"USD","units":"25"}}`)
	require.Equal(t, http.StatusOK, code, "%v", session)
	url, _ := session["url"].(string)
	require.NotEmpty(t, url)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/pay", bytes.NewReader([]byte("method=card")))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	pay, err := noRedirect.Do(req)
	require.NoError(t, err)
	_ = pay.Body.Close()
	require.Equal(t, http.StatusSeeOther, pay.StatusCode)
	require.Eventually(t, func() bool {
		_, bal := do(t, http.MethodGet, s.gatewayURL+"/v1/orgs/acme/balance", member, "")
		b, _ := bal["balance"].(map[string]any)
		return b != nil && b["units"] == "25"
	}, 15*time.Second, 50*time.Millisecond, "the webhook credits the balance")
}

// scrapeAll reads every /metrics of urls (by service).
func scrapeAll(t *testing.T, urls map[string]string) map[string]map[string]*dto.MetricFamily {
	t.Helper()
	out := map[string]map[string]*dto.MetricFamily{}
	for name, url := range urls {
		out[name] = scrape(t, url)
	}
	return out
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, url)
	return fams
}

func get(t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
