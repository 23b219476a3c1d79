package cors_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/gateway/internal/cors"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	allowed := cors.Handler([]string{"https://console.example.com"}, next)
	none := cors.Handler(nil, next)
	tests := []struct {
		name          string
		h             http.Handler
		method        string
		headers       map[string]string
		want          int
		wantOrigin    string
		wantPreflight bool
	}{
		{"preflight, allowed origin", allowed, "OPTIONS", map[string]string{"Origin": "https://console.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-csrf-token"}, http.StatusNoContent, "https://console.example.com", true},
		{"preflight, foreign origin", allowed, "OPTIONS", map[string]string{"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"}, http.StatusNoContent, "", false},
		{"preflight, no origins configured", none, "OPTIONS", map[string]string{"Origin": "https://console.example.com", "Access-Control-Request-Method": "GET"}, http.StatusNoContent, "", false},
		{"request, allowed origin", allowed, "GET", map[string]string{"Origin": "https://console.example.com"}, http.StatusTeapot, "https://console.example.com", false},
		{"request, foreign origin", allowed, "GET", map[string]string{"Origin": "https://evil.test"}, http.StatusTeapot, "", false},
		{"request, allowed origin in other letter case", allowed, "GET", map[string]string{"Origin": "HTTPS://Console.Example.com"}, http.StatusTeapot, "HTTPS://Console.Example.com", false},
		{"request, origin as a prefix", allowed, "GET", map[string]string{"Origin": "https://console.example.com.evil.test"}, http.StatusTeapot, "", false},
		{"plain OPTIONS is not a preflight", allowed, "OPTIONS", map[string]string{"Origin": "https://console.example.com"}, http.StatusTeapot, "https://console.example.com", false},
		{"no origin", allowed, "GET", nil, http.StatusTeapot, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://gw.test/v1/orgs/acme/balance", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, r)
			h := rec.Header()
			require.Equal(t, tt.want, rec.Code)
			require.Equal(t, tt.wantOrigin, h.Get("Access-Control-Allow-Origin"))
			if tt.wantOrigin != "" {
				require.Equal(t, "true", h.Get("Access-Control-Allow-Credentials"))
				require.Contains(t, h.Values("Vary"), "Origin")
			}
			if tt.wantPreflight {
				require.Equal(t, "GET, HEAD, POST, PUT, PATCH, DELETE", h.Get("Access-Control-Allow-Methods"))
				for _, want := range []string{"Authorization", "Content-Type", "X-CSRF-Token", "X-Request-Id"} {
					require.Contains(t, h.Get("Access-Control-Allow-Headers"), want)
				}
				require.Equal(t, "600", h.Get("Access-Control-Max-Age"))
			} else {
				require.Empty(t, h.Get("Access-Control-Allow-Methods"))
			}
		})
	}
}
