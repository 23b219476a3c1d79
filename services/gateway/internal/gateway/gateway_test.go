package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func startGateway(t *testing.T) (*httptest.Server, *ledgertest.Ledger) {
	t.Helper()
	l := ledgertest.Start(t, ledgertest.Options{})
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{LedgerAddr: l.Addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, l
}

func do(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	return resp.StatusCode, out
}

func TestRESTAuthAndBalance(t *testing.T) {
	t.Parallel()
	srv, l := startGateway(t)
	ops := ledgertest.OpsToken(t)
	member := ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	stranger := ledgertest.Token(t, auth.Claims{Subject: "u2", OrgID: "globex", Roles: []auth.Role{auth.RoleMember}})

	code, body := do(t, "POST", srv.URL+"/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"12","nanos":500000000},"idempotencyKey":"rest-1","reason":"grant"}`)
	require.Equal(t, http.StatusOK, code, "%v", body)

	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", "GET", "/v1/orgs/acme/balance", "", "", http.StatusUnauthorized},
		{"garbage token", "GET", "/v1/orgs/acme/balance", "not-a-jwt", "", http.StatusUnauthorized},
		{"other org", "GET", "/v1/orgs/acme/balance", stranger, "", http.StatusForbidden},
		{"other org transactions", "GET", "/v1/orgs/acme/transactions", stranger, "", http.StatusForbidden},
		{"own org", "GET", "/v1/orgs/acme/balance", member, "", http.StatusOK},
		{"own transactions", "GET", "/v1/orgs/acme/transactions?pageSize=10", member, "", http.StatusOK},
		{"member cannot credit", "POST", "/v1/orgs/acme/credits", member, `{"amount":{"currencyCode":"USD","units":"1"},"idempotencyKey":"x"}`, http.StatusForbidden},
		{"malformed json", "POST", "/v1/orgs/acme/credits", ops, `{"amount":`, http.StatusBadRequest},
		{"negative amount", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"-1"},"idempotencyKey":"x"}`, http.StatusBadRequest},
		{"unknown currency", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"QQQ","units":"1"},"idempotencyKey":"x"}`, http.StatusBadRequest},
		{"missing idempotency key", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"1"}}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, srv.URL+tt.path, tt.token, tt.body)
			require.Equal(t, tt.want, code, "%v", body)
			if code != http.StatusOK {
				require.NotEmpty(t, body["message"], "REST errors carry a message")
				require.Regexp(t, `^[A-Z_]+$`, body["code"], "REST errors carry the gRPC code's name")
			}
		})
	}
	_, bal := do(t, "GET", srv.URL+"/v1/orgs/acme/balance", member, "")
	require.Equal(t, "12", bal["balance"].(map[string]any)["units"])
	require.EqualValues(t, 500000000, bal["balance"].(map[string]any)["nanos"])
	require.NotEmpty(t, bal["expiresAt"])
	_, txs := do(t, "GET", srv.URL+"/v1/orgs/acme/transactions", member, "")
	require.Len(t, txs["transactions"], 1)
	_ = l
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	srv, _ := startGateway(t)
	get := func(t *testing.T, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, body
	}
	type document struct {
		OpenAPI string `json:"openapi" yaml:"openapi"`
		Info    struct {
			Title   string `json:"title" yaml:"title"`
			Version string `json:"version" yaml:"version"`
		} `json:"info" yaml:"info"`
		Servers []struct {
			URL string `json:"url" yaml:"url"`
		} `json:"servers" yaml:"servers"`
		Security   []map[string][]string                `json:"security" yaml:"security"`
		Paths      map[string]map[string]map[string]any `json:"paths" yaml:"paths"`
		Components struct {
			SecuritySchemes map[string]map[string]string `json:"securitySchemes" yaml:"securitySchemes"`
		} `json:"components" yaml:"components"`
	}
	tests := []struct {
		path, contentType string
		decode            func([]byte, any) error
	}{
		{"/openapi.json", "application/json", json.Unmarshal},
		{"/openapi.yaml", "application/yaml", yaml.Unmarshal},
	}
	var docs []document
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, tt.path)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tt.contentType, resp.Header.Get("Content-Type"))
			var doc document
			require.NoError(t, tt.decode(body, &doc))
			require.True(t, strings.HasPrefix(doc.OpenAPI, "3.0."), doc.OpenAPI)
			require.Equal(t, "tally", doc.Info.Title)
			require.NotEmpty(t, doc.Info.Version)
			require.Equal(t, "http://localhost:8080", doc.Servers[0].URL)
			require.Equal(t, []map[string][]string{{"bearerAuth": {}}}, doc.Security)
			bearer := doc.Components.SecuritySchemes["bearerAuth"]
			require.Equal(t, []string{"http", "bearer", "JWT"}, []string{bearer["type"], bearer["scheme"], bearer["bearerFormat"]})
			require.Contains(t, doc.Paths, "/v1/orgs/{orgId}/balance")
			require.Contains(t, doc.Paths, "/v1/orgs/{orgId}/transactions")
			require.Equal(t, []any{}, doc.Paths["/v1/pricing/models"]["get"]["security"], "the price list is public")
			require.NotContains(t, doc.Paths["/v1/orgs/{orgId}/balance"]["get"], "security", "a balance needs the global bearer token")
			pdf := doc.Paths["/v1/orgs/{orgId}/payments/{paymentId}/invoice"]["get"]["responses"].(map[string]any)["200"].(map[string]any)["content"]
			require.Contains(t, pdf, "application/pdf")
			docs = append(docs, doc)
		})
	}
	require.Len(t, docs, 2)
	require.Equal(t, docs[0], docs[1], "the JSON and YAML documents say the same")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
