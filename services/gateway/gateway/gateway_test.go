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

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/gateway/gateway"
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
				require.NotZero(t, body["code"], "REST errors carry the gRPC code")
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
	resp, err := http.Get(srv.URL + "/openapi.json")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc struct {
		Swagger string                    `json:"swagger"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	require.Equal(t, "2.0", doc.Swagger)
	require.Contains(t, doc.Paths, "/v1/orgs/{orgId}/balance")
	require.Contains(t, doc.Paths, "/v1/orgs/{orgId}/transactions")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
