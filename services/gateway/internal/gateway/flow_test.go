package gateway_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/paymentstest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// stack is the ledger, pricing and payments (local test-mode checkout) behind a real gateway.
type stack struct {
	gw          *httptest.Server
	checkoutURL string
	pricing     *pricingtest.Pricing
	ledger      *ledgertest.Ledger
	paymentsDB  string
}

func startStack(t *testing.T) stack {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := ledgertest.Start(t, ledgertest.Options{})
	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})

	// The gateway's URL must be known before payments starts (its webhook target), and payments'
	// address before the gateway is built: swap the handler in once both exist.
	var handler atomic.Value
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)

	pay := paymentstest.Start(t, paymentstest.Options{Ledger: l, WebhookURL: gw.URL + "/v1/webhooks/stripe", Logger: quiet})

	h, closeConns, err := gateway.New(t.Context(), gateway.Config{
		LedgerAddr: l.Addr, PricingAddr: p.Addr, PaymentsAddr: pay.Addr, Logger: quiet,
	})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	handler.Store(h)
	return stack{gw: gw, checkoutURL: pay.HTTPURL, pricing: p, ledger: l, paymentsDB: pay.DatabaseURL}
}

// TestTopUpFlowEndToEnd walks the product's top-up: checkout session → local checkout page → Pay
// → signed webhook through the gateway → balance up and validity renewed → payment listed with
// the member who paid → invoice PDF downloads.
func TestTopUpFlowEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	member := ledgertest.Token(t, auth.Claims{Subject: "user-ada", OrgID: "acme", Email: "ada@acme.test", Name: "Ada Lovelace", Roles: []auth.Role{auth.RoleMember}})

	code, session := do(t, "POST", s.gw.URL+"/v1/orgs/acme/checkout-sessions", member, `{"amount":{"currencyCode":"USD","units":"25"}}`)
	require.Equal(t, http.StatusOK, code, "%v", session)
	url, _ := session["url"].(string)
	require.Contains(t, url, "/checkout/test/")

	page, err := http.Get(url)
	require.NoError(t, err)
	body, _ := io.ReadAll(page.Body)
	_ = page.Body.Close()
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, string(body), "TEST MODE")

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	require.Contains(t, string(body), ">Credit Card</button>")
	require.Contains(t, string(body), ">Google Pay</button>")
	pay, err := noRedirect.Post(url+"/pay", "application/x-www-form-urlencoded", bytes.NewReader([]byte("method=google_pay")))
	require.NoError(t, err)
	_ = pay.Body.Close()
	require.Equal(t, http.StatusSeeOther, pay.StatusCode)
	require.Equal(t, "http://console.test/billing?checkout=success&session_id="+session["sessionId"].(string), pay.Header.Get("Location"))

	require.Eventually(t, func() bool {
		_, bal := do(t, "GET", s.gw.URL+"/v1/orgs/acme/balance", member, "")
		b, _ := bal["balance"].(map[string]any)
		return b != nil && b["units"] == "25"
	}, 15*time.Second, 100*time.Millisecond, "the webhook credits the balance")
	_, bal := do(t, "GET", s.gw.URL+"/v1/orgs/acme/balance", member, "")
	require.NotEmpty(t, bal["expiresAt"], "the top-up renews validity")

	_, list := do(t, "GET", s.gw.URL+"/v1/orgs/acme/payments", member, "")
	payments, _ := list["payments"].([]any)
	require.Len(t, payments, 1)
	p := payments[0].(map[string]any)
	require.Contains(t, []any{"PAYMENT_STATUS_SUCCEEDED", "succeeded"}, p["status"])
	require.Contains(t, string(mustJSON(t, p)), "Ada Lovelace")
	require.NotEmpty(t, p["invoiceNumber"])

	req, err := http.NewRequestWithContext(t.Context(), "GET", s.gw.URL+"/v1/orgs/acme/payments/"+p["id"].(string)+"/invoice", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+member)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	pdf, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", pdf)
	require.Equal(t, "application/pdf", resp.Header.Get("Content-Type"))
	require.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")))
	require.Equal(t, `attachment; filename="`+p["invoiceNumber"].(string)+`.pdf"`, resp.Header.Get("Content-Disposition"),
		"the download is named after the invoice")
	require.Empty(t, resp.Header.Get("Grpc-Metadata-X-Tally-Document-Number"))

	// A forged delivery to the public webhook route is refused with 400 and changes nothing.
	forged, err := http.Post(s.gw.URL+"/v1/webhooks/stripe", "application/json", bytes.NewReader([]byte(`{"id":"evt_forged","type":"checkout.session.completed"}`)))
	require.NoError(t, err)
	_ = forged.Body.Close()
	require.Equal(t, http.StatusBadRequest, forged.StatusCode)
	_, bal = do(t, "GET", s.gw.URL+"/v1/orgs/acme/balance", member, "")
	require.Equal(t, "25", bal["balance"].(map[string]any)["units"])
}

// TestPublicPriceListWithETag reads the pricing page's data without a token and revalidates it.
func TestPublicPriceListWithETag(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	for _, path := range []string{"/v1/pricing/models", "/v1/pricing/instances"} {
		resp, err := http.Get(s.gw.URL + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		etag := resp.Header.Get("ETag")
		require.Regexp(t, regexp.MustCompile(`^"[0-9a-f]{32}"$`), etag)

		req, _ := http.NewRequestWithContext(t.Context(), "GET", s.gw.URL+path, nil)
		req.Header.Set("If-None-Match", etag)
		again, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = again.Body.Close()
		require.Equal(t, http.StatusNotModified, again.StatusCode)
	}
	// An ops price change gives the list a new ETag.
	etag := func() string {
		resp, err := http.Get(s.gw.URL + "/v1/pricing/models")
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	before := etag()
	_, err := s.pricing.Client(t, s.pricing.OpsToken(t)).SetModelPrice(t.Context(), &pricingv1.SetModelPriceRequest{
		ModelId: "tts-standard", DisplayName: "Tally Voice standard (text to speech)", Modality: pricingv1.Modality_MODALITY_TEXT_TO_SPEECH,
		Dimensions: []*pricingv1.PriceDimension{{Unit: "characters", Price: money.ToProto(12_000_000, "USD"), Per: 1000}},
		Reason:     "price cut", IdempotencyKey: "etag-test",
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return etag() != before }, 5*time.Second, 50*time.Millisecond)
}
