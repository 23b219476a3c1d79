package accesslog_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/requestid"
	"github.com/tallyhq/tally/services/gateway/internal/accesslog"
)

// token is a JWT-shaped bearer token claiming claims, unverified.
func token(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("signature-secret-part"))
}

// TestAccessLogLine serves requests through the gateway's routing shape (an http.ServeMux whose
// /v1/ is a grpc-gateway mux) and requires one line per request with the route pattern (not the
// path), status, caller kind and request id, and no token, cookie or query string. No service
// answered a caller kind here, so every line is anonymous whatever the token claims: the caller
// kind is the one a service verified (CallerInterceptor; the gateway's TestAccessLogCallerKind).
func TestAccessLogLine(t *testing.T) {
	t.Parallel()
	mux := runtime.NewServeMux(runtime.WithMiddlewares(accesslog.Route))
	require.NoError(t, mux.HandlePath(http.MethodGet, "/v1/orgs/{org_id}/balance", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		if r.Header.Get("Authorization") == "Bearer "+token(`{"sub":"u9","roles":["member"]}`) {
			w.WriteHeader(http.StatusUnauthorized) // the service refused the token
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
	root := http.NewServeMux()
	root.Handle("/v1/", mux)
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	var buf bytes.Buffer
	h := accesslog.Handler(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), nil, accesslog.Pattern(root))

	admin := token(`{"sub":"u1","org_id":"acme","roles":["admin","member"]}`)
	cases := []struct {
		path, auth, route, caller string
		status                    int
	}{
		{"/v1/orgs/acme/balance?secret=q", "Bearer " + admin, "/v1/orgs/{org_id}/balance", server.CallerAnonymous, http.StatusOK},
		{"/v1/orgs/acme/balance", "Bearer " + token(`{"sub":"service:payments","roles":["service"]}`), "/v1/orgs/{org_id}/balance", server.CallerAnonymous, http.StatusOK},
		{"/v1/orgs/acme/balance", "Bearer " + token(`{"sub":"u9","roles":["member"]}`), "/v1/orgs/{org_id}/balance", server.CallerAnonymous, http.StatusUnauthorized},
		{"/v1/orgs/acme/balance", "Bearer not-a-jwt", "/v1/orgs/{org_id}/balance", server.CallerAnonymous, http.StatusOK},
		{"/v1/nothing", "", "/v1/", server.CallerAnonymous, http.StatusNotFound},
		{"/healthz", "", "/healthz", server.CallerAnonymous, http.StatusOK},
	}
	for i, tc := range cases {
		req := httptest.NewRequestWithContext(requestid.With(t.Context(), "rid-"+string(rune('a'+i))), http.MethodGet, tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		req.AddCookie(&http.Cookie{Name: "tally_session", Value: "cookie-secret-value"})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, tc.status, rec.Code, tc.path)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, len(cases), buf.String())
	for i, tc := range cases {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &line))
		require.Equal(t, accesslog.Message, line["msg"])
		require.Equal(t, "GET", line["method"])
		require.Equal(t, tc.route, line["route"], lines[i])
		require.EqualValues(t, tc.status, line["status"], lines[i])
		require.Equal(t, tc.caller, line["caller"], lines[i])
		require.Equal(t, "rid-"+string(rune('a'+i)), line["request_id"])
		require.Greater(t, line["duration"], float64(0))
	}
	for _, secret := range []string{admin, "signature-secret-part", "cookie-secret-value", "secret=q", "acme"} {
		require.NotContains(t, buf.String(), secret)
	}
}

// TestAccessLogUnmatched names a request no mux routed "unmatched".
func TestAccessLogUnmatched(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := accesslog.Handler(slog.New(slog.NewJSONHandler(&buf, nil)), nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge) // refused before routing (the limits)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/x", nil))
	require.Contains(t, buf.String(), `"route":"unmatched","status":413`)
}
