package httpmetrics_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/gateway/internal/accesslog"
	"github.com/tallyhq/tally/services/gateway/internal/httpmetrics"
)

// TestRequestsAreCountedByRouteNeverByPath measures through the access log, as the gateway does:
// the route is the mux's pattern, whatever ids the path carries.
func TestRequestsAreCountedByRouteNeverByPath(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := httpmetrics.New(reg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/orgs/{org_id}/balance", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusContinue) // interim: not the status
		w.WriteHeader(http.StatusTeapot)
	})
	h := accesslog.Handler(slog.New(slog.NewJSONHandler(io.Discard, nil)), m, accesslog.Pattern(mux))
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/orgs/acme/balance"}, {"GET", "/v1/orgs/globex/balance"}, {"GET", "/teapot"},
		{"GET", "/no/such/route"}, {"BREW", "/no/such/route"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(t.Context(), req.method, req.path, nil))
	}
	want := `
# HELP tally_http_requests_total HTTP requests served by the gateway, by route (the matched pattern), method and status code.
# TYPE tally_http_requests_total counter
tally_http_requests_total{code="200",method="GET",route="/v1/orgs/{org_id}/balance"} 2
tally_http_requests_total{code="404",method="GET",route="unmatched"} 1
tally_http_requests_total{code="404",method="other",route="unmatched"} 1
tally_http_requests_total{code="418",method="GET",route="/teapot"} 1
# HELP tally_http_requests_in_flight HTTP requests the gateway is serving now.
# TYPE tally_http_requests_in_flight gauge
tally_http_requests_in_flight 0
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "tally_http_requests_total", "tally_http_requests_in_flight"))
	n, err := testutil.GatherAndCount(reg, "tally_http_request_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 4, n, "one duration series per route and method")
}
