package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestHealthzReportsBackends: /healthz answers 200 with each backend SERVING, and 503 naming the
// backend that does not answer.
func TestHealthzReportsBackends(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	// An address nothing listens on: a port that was free a moment ago.
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := lis.Addr().String()
	require.NoError(t, lis.Close())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name       string
		cfg        gateway.Config
		wantStatus int
		want       map[string]any
	}{
		{"all up", gateway.Config{LedgerAddr: l.Addr, Logger: quiet}, http.StatusOK,
			map[string]any{"status": "ok", "backends": map[string]any{"ledger": "SERVING"}}},
		{"pricing down", gateway.Config{LedgerAddr: l.Addr, PricingAddr: down, Logger: quiet}, http.StatusServiceUnavailable,
			map[string]any{"status": "unavailable", "backends": map[string]any{"ledger": "SERVING", "pricing": "UNAVAILABLE"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, closeConns, err := gateway.New(t.Context(), tt.cfg)
			require.NoError(t, err)
			t.Cleanup(closeConns)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/healthz", nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			var got map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Equal(t, tt.want, got)
		})
	}
}
