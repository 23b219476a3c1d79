package gateway_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestConsoleAndCORSRouting serves the console beside the API: pages fall back to index.html,
// API paths never do, and the REST routes answer CORS preflights.
func TestConsoleAndCORSRouting(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	dist := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dist, "index.html"), []byte("<div id=root></div>"), 0o644))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newGateway := func(dir string) *httptest.Server {
		h, closeConns, err := gateway.New(t.Context(), gateway.Config{
			LedgerAddr: l.Addr, Logger: quiet, ConsoleDir: dir, CORSOrigins: []string{"http://localhost:5173"},
		})
		require.NoError(t, err)
		t.Cleanup(closeConns)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv
	}
	gw := newGateway(dist)
	notBuilt := newGateway(filepath.Join(t.TempDir(), "missing"))

	tests := []struct {
		name, method, url string
		headers           map[string]string
		want              int
		wantType          string
		wantBody          string
		wantAllowOrigin   string
	}{
		{"console root", "GET", gw.URL + "/", nil, http.StatusOK, "text/html; charset=utf-8", "<div id=root>", ""},
		{"console page", "GET", gw.URL + "/settings/notifications", nil, http.StatusOK, "text/html; charset=utf-8", "<div id=root>", ""},
		{"unknown API route", "GET", gw.URL + "/v1/nope", nil, http.StatusNotFound, "application/json", `"message"`, ""},
		{"auth without sign-in", "GET", gw.URL + "/auth/me", nil, http.StatusNotFound, "application/json", `"message"`, ""},
		{"openapi", "GET", gw.URL + "/openapi.json", nil, http.StatusOK, "application/json", `"paths"`, ""},
		{"unknown openapi file", "GET", gw.URL + "/openapi.txt", nil, http.StatusNotFound, "application/json", `"message"`, ""},
		{"healthz", "GET", gw.URL + "/healthz", nil, http.StatusOK, "application/json", `"ledger":"SERVING"`, ""},
		{"page POST", "POST", gw.URL + "/billing", nil, http.StatusNotFound, "application/json", `"message"`, ""},
		{"preflight", "OPTIONS", gw.URL + "/v1/orgs/acme/balance", map[string]string{"Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}, http.StatusNoContent, "", "", "http://localhost:5173"},
		{"preflight of a write", "OPTIONS", gw.URL + "/v1/orgs/acme/credits", map[string]string{"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-csrf-token"}, http.StatusNoContent, "", "", "http://localhost:5173"},
		{"preflight, foreign origin", "OPTIONS", gw.URL + "/v1/orgs/acme/balance", map[string]string{"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"}, http.StatusNoContent, "", "", ""},
		{"API error carries CORS", "GET", gw.URL + "/v1/orgs/acme/balance", map[string]string{"Origin": "http://localhost:5173"}, http.StatusUnauthorized, "application/json", `"message"`, "http://localhost:5173"},
		{"console not built", "GET", notBuilt.URL + "/", nil, http.StatusOK, "text/html; charset=utf-8", "make web", ""},
		{"console not built, page", "GET", notBuilt.URL + "/usage", nil, http.StatusOK, "text/html; charset=utf-8", "make web", ""},
		{"console not built, API", "GET", notBuilt.URL + "/v1/nope", nil, http.StatusNotFound, "application/json", `"message"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, tt.url, nil)
			require.NoError(t, err)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, tt.want, resp.StatusCode, "%s", body)
			if tt.wantType != "" {
				require.Equal(t, tt.wantType, resp.Header.Get("Content-Type"))
			}
			require.Contains(t, string(body), tt.wantBody)
			require.Equal(t, tt.wantAllowOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
		})
	}
}
