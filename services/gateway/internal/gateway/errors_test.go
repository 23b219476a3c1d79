package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// leaks are fragments of library and transport text that REST error messages must not carry.
var leaks = []string{"proto:", "(line ", "/tally.", "Service/", "grpc:", "strconv", "Go value", "json:", "reflect", "dial tcp", "127.0.0.1"}

// requireCleanMessage fails when msg leaks internals or echoes much of the caller's input.
func requireCleanMessage(t *testing.T, msg string) {
	t.Helper()
	require.NotEmpty(t, msg)
	for _, l := range leaks {
		require.NotContains(t, msg, l, "the message leaks internals")
	}
	require.LessOrEqual(t, len(msg), 160, "the message echoes too much: %q", msg)
}

// TestRESTErrorsAreClean: decoder failures, bad paths and queries, routing errors and auth
// refusals come back as {"code","message","details"} with the status of the code (the code's
// name), and no internals.
func TestRESTErrorsAreClean(t *testing.T) {
	t.Parallel()
	srv, _ := startGateway(t)
	ops := ledgertest.OpsToken(t)
	member := ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	credits := "/v1/orgs/acme/credits"
	long := strings.Repeat("9", 5000)
	tests := []struct {
		name, method, path, token, body string
		wantStatus                      int
		wantCode                        string
		wantMessage                     string // a fragment
	}{
		{"malformed JSON", "POST", credits, ops, `{"amount":`, 400, "INVALID_ARGUMENT", "not valid JSON for CreditRequest"},
		{"not JSON at all", "POST", credits, ops, `amount=5`, 400, "INVALID_ARGUMENT", "not valid JSON"},
		{"unknown field", "POST", credits, ops, `{"bogus":1}`, 400, "INVALID_ARGUMENT", `unknown field "bogus"`},
		{"long unknown field", "POST", credits, ops, `{"` + strings.Repeat("x", 500) + `":1}`, 400, "INVALID_ARGUMENT", "unknown field"},
		{"repeated field", "POST", credits, ops, `{"reason":"a","reason":"b"}`, 400, "INVALID_ARGUMENT", "repeats the field"},
		{"wrong type", "POST", credits, ops, `{"amount":{"units":true}}`, 400, "INVALID_ARGUMENT", "invalid value for units"},
		{"huge number", "POST", credits, ops, `{"amount":{"units":"` + long + `"}}`, 400, "INVALID_ARGUMENT", "amount.units"},
		{"huge bare number", "POST", credits, ops, `{"amount":{"nanos":` + long + `}}`, 400, "INVALID_ARGUMENT", "amount.nanos"},
		{"wrong enum", "POST", credits, ops, `{"source":"CREDIT_SOURCE_FREE_MONEY"}`, 400, "INVALID_ARGUMENT", "invalid value for source"},
		{"deep nesting", "POST", credits, ops, `{"amount":` + strings.Repeat("[", 20000), 400, "INVALID_ARGUMENT", "nested too deeply"},
		{"invalid UTF-8 in the body", "POST", credits, ops, "{\"reason\":\"\xff\xfe\"}", 400, "INVALID_ARGUMENT", "invalid UTF-8"},
		{"invalid UTF-8 in the path", "GET", "/v1/orgs/%FF%FE/balance", ops, "", 400, "INVALID_ARGUMENT", "not valid UTF-8"},
		{"invalid UTF-8 in the query", "GET", "/v1/orgs/acme/transactions?pageToken=%FF", member, "", 400, "INVALID_ARGUMENT", "not valid UTF-8"},
		{"query not an integer", "GET", "/v1/orgs/acme/transactions?pageSize=" + long, member, "", 400, "INVALID_ARGUMENT", "query parameter page_size"},
		{"query repeated", "GET", "/v1/orgs/acme/transactions?pageSize=1&pageSize=2", member, "", 400, "INVALID_ARGUMENT", "more than once"},
		{"wrong method", "DELETE", "/v1/orgs/acme/balance", member, "", 405, "UNIMPLEMENTED", "method not allowed"},
		{"unknown route", "GET", "/v1/nowhere", member, "", 404, "NOT_FOUND", "no such route"},
		{"no token", "GET", "/v1/orgs/acme/balance", "", "", 401, "UNAUTHENTICATED", "bearer token"},
		{"another org", "GET", "/v1/orgs/globex/balance", member, "", 403, "PERMISSION_DENIED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, srv.URL+tt.path, tt.token, tt.body)
			require.Equal(t, tt.wantStatus, code, "%v", body)
			require.Equal(t, tt.wantCode, body["code"], "%v", body)
			msg, _ := body["message"].(string)
			require.Contains(t, msg, tt.wantMessage)
			requireCleanMessage(t, msg)
			require.Len(t, body, 3, "only code, message and details: %v", body)
			require.IsType(t, []any{}, body["details"])
		})
	}
	// Unauthenticated answers carry a proper challenge, not the message.
	resp, err := http.Get(srv.URL + "/v1/orgs/acme/balance")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, `Bearer realm="tally"`, resp.Header.Get("WWW-Authenticate"))
}

// TestRESTFieldViolations: a wrong field comes back as google.rpc.BadRequest naming it, whether
// the service refused it (pkg/ids, money) or the gateway's body decoder did.
func TestRESTFieldViolations(t *testing.T) {
	t.Parallel()
	srv, _ := startGateway(t)
	ops := ledgertest.OpsToken(t)
	tests := []struct {
		name, path, body, field string
	}{
		{"negative amount", "/v1/orgs/acme/credits", `{"amount":{"currencyCode":"USD","units":"-1"},"idempotencyKey":"fv-1"}`, "amount"},
		{"unknown currency", "/v1/orgs/acme/credits", `{"amount":{"currencyCode":"QQQ","units":"1"},"idempotencyKey":"fv-2"}`, "amount"},
		{"missing idempotency key", "/v1/orgs/acme/credits", `{"amount":{"currencyCode":"USD","units":"1"}}`, "idempotency_key"},
		{"bad org id", "/v1/orgs/-acme/credits", `{"amount":{"currencyCode":"USD","units":"1"},"idempotencyKey":"fv-3"}`, "org_id"},
		{"decoder: wrong type", "/v1/orgs/acme/credits", `{"amount":{"units":true}}`, "units"},
		{"decoder: unknown field", "/v1/orgs/acme/credits", `{"bogus":1}`, "bogus"},
		{"decoder: integer", "/v1/orgs/acme/credits", `{"amount":{"currencyCode":"USD","units":"1e3"}}`, "amount.units"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, "POST", srv.URL+tt.path, ops, tt.body)
			require.Equal(t, http.StatusBadRequest, code, "%v", body)
			require.Equal(t, "INVALID_ARGUMENT", body["code"], "%v", body)
			details, _ := body["details"].([]any)
			require.Len(t, details, 1, "%v", body)
			br, _ := details[0].(map[string]any)
			require.Equal(t, "type.googleapis.com/google.rpc.BadRequest", br["@type"], "%v", body)
			fvs, _ := br["fieldViolations"].([]any)
			require.Len(t, fvs, 1, "%v", body)
			fv, _ := fvs[0].(map[string]any)
			require.Equal(t, tt.field, fv["field"], "%v", body)
			desc, _ := fv["description"].(string)
			requireCleanMessage(t, desc)
		})
	}
}

// TestRESTWrongMethod: a route asked with a method it does not have answers 405 with the methods
// it has in Allow, in the error shape; the gateway's own documents likewise.
func TestRESTWrongMethod(t *testing.T) {
	t.Parallel()
	srv, _ := startGateway(t)
	member := ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	tests := []struct{ method, path, allow string }{
		{"DELETE", "/v1/orgs/acme/balance", "GET"},
		{"POST", "/v1/orgs/acme/balance", "GET"},
		{"GET", "/v1/orgs/acme/credits", "POST"},
		{"PUT", "/v1/orgs/acme/adjustments", "POST"},
		{"POST", "/openapi.json", "GET, HEAD"},
		{"DELETE", "/healthz", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+member)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%v", body)
			require.Equal(t, tt.allow, resp.Header.Get("Allow"))
			require.Equal(t, "UNIMPLEMENTED", body["code"])
			require.Equal(t, "method not allowed on this route", body["message"])
			require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
		})
	}
}

// TestRESTReplayAndHeaders: the replay of an idempotent write says so (Idempotent-Replayed and
// the replayed field) and the first write does not; no response carries service metadata as
// Grpc-Metadata-* headers.
func TestRESTReplayAndHeaders(t *testing.T) {
	t.Parallel()
	srv, _ := startGateway(t)
	ops := ledgertest.OpsToken(t)
	credit := `{"amount":{"currencyCode":"USD","units":"3"},"idempotencyKey":"replay-1","reason":"replay test"}`
	for i, want := range []string{"", "true"} {
		req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/v1/orgs/acme/credits", strings.NewReader(credit))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+ops)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
		require.Equal(t, want, resp.Header.Get("Idempotent-Replayed"), "call %d", i)
		require.Equal(t, want == "true", body["replayed"], "call %d", i)
		for k := range resp.Header {
			require.False(t, strings.HasPrefix(k, "Grpc-"), "stray header %s", k)
		}
		require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
	}
}
