package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// TestRESTRoutes drives the generated grpc-gateway routes as the gateway mounts them: the
// checkout modal's POST, the Billing page's list and the invoice download as application/pdf.
func TestRESTRoutes(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	mux := runtime.NewServeMux()
	require.NoError(t, paymentsv1.RegisterPaymentsServiceHandlerFromEndpoint(t.Context(), mux, e.addr,
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	token := memberToken(t, "acme")
	do := func(method, path, body string) (*http.Response, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.NoError(t, err)
		return resp, b
	}

	resp, body := do(http.MethodGet, "/v1/orgs/acme/checkout-options", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.JSONEq(t, `{"minAmount": {"currencyCode": "USD", "units": "5", "nanos": 0}, "maxAmount": {"currencyCode": "USD", "units": "10000", "nanos": 0},
		"presets": [{"currencyCode": "USD", "units": "10", "nanos": 0}, {"currencyCode": "USD", "units": "25", "nanos": 0},
			{"currencyCode": "USD", "units": "50", "nanos": 0}, {"currencyCode": "USD", "units": "100", "nanos": 0}],
		"currencyCode": "USD", "validityMonths": 3}`, string(body))

	resp, body = do(http.MethodPost, "/v1/orgs/acme/checkout-sessions", `{"amount": {"units": "42", "currency_code": "USD"}}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var cs struct {
		URL       string `json:"url"`
		SessionID string `json:"sessionId"`
		PaymentID string `json:"paymentId"`
	}
	require.NoError(t, json.Unmarshal(body, &cs))
	require.NotEmpty(t, cs.URL)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme",
		cs: &paymentsv1.CreateCheckoutSessionResponse{SessionId: cs.SessionID, PaymentId: cs.PaymentID}, amountMinor: 4200}.payload(t), app.OutcomeProcessed)

	resp, body = do(http.MethodGet, "/v1/orgs/acme/payments", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"PAYMENT_STATUS_SUCCEEDED"`)
	require.Contains(t, string(body), `"ann@acme.test"`)

	resp, body = do(http.MethodGet, "/v1/orgs/acme/payments/"+cs.PaymentID+"/invoice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "application/pdf", resp.Header.Get("Content-Type"))
	require.True(t, bytes.HasPrefix(body, []byte("%PDF-")))

	resp, _ = do(http.MethodGet, "/v1/orgs/globex/payments", "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = do(http.MethodGet, "/v1/orgs/globex/checkout-options", "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}
