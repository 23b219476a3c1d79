package gateway_test

import (
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
// refusals come back as {"code","message"} with the status of the code, and no internals.
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
		wantCode                        float64
		wantMessage                     string // a fragment
	}{
		{"malformed JSON", "POST", credits, ops, `{"amount":`, 400, 3, "not valid JSON"},
		{"not JSON at all", "POST", credits, ops, `amount=5`, 400, 3, "not valid JSON"},
		{"unknown field", "POST", credits, ops, `{"bogus":1}`, 400, 3, `unknown field "bogus"`},
		{"long unknown field", "POST", credits, ops, `{"` + strings.Repeat("x", 500) + `":1}`, 400, 3, "unknown field"},
		{"repeated field", "POST", credits, ops, `{"reason":"a","reason":"b"}`, 400, 3, "repeats the field"},
		{"wrong type", "POST", credits, ops, `{"amount":{"units":true}}`, 400, 3, "invalid value for units"},
		{"huge number", "POST", credits, ops, `{"amount":{"units":"` + long + `"}}`, 400, 3, "amount.units"},
		{"huge bare number", "POST", credits, ops, `{"amount":{"nanos":` + long + `}}`, 400, 3, "amount.nanos"},
		{"wrong enum", "POST", credits, ops, `{"source":"CREDIT_SOURCE_FREE_MONEY"}`, 400, 3, "invalid value for source"},
		{"deep nesting", "POST", credits, ops, `{"amount":` + strings.Repeat("[", 20000), 400, 3, "nested too deeply"},
		{"invalid UTF-8 in the body", "POST", credits, ops, "{\"reason\":\"\xff\xfe\"}", 400, 3, "invalid UTF-8"},
		{"invalid UTF-8 in the path", "GET", "/v1/orgs/%FF%FE/balance", ops, "", 400, 3, "not valid UTF-8"},
		{"invalid UTF-8 in the query", "GET", "/v1/orgs/acme/transactions?pageToken=%FF", member, "", 400, 3, "not valid UTF-8"},
		{"query not an integer", "GET", "/v1/orgs/acme/transactions?pageSize=" + long, member, "", 400, 3, "query parameter page_size"},
		{"query repeated", "GET", "/v1/orgs/acme/transactions?pageSize=1&pageSize=2", member, "", 400, 3, "more than once"},
		{"wrong method", "DELETE", "/v1/orgs/acme/balance", member, "", 405, 12, "method not allowed"},
		{"unknown route", "GET", "/v1/nowhere", member, "", 404, 5, "no such route"},
		{"no token", "GET", "/v1/orgs/acme/balance", "", "", 401, 16, "bearer token"},
		{"another org", "GET", "/v1/orgs/globex/balance", member, "", 403, 7, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, srv.URL+tt.path, tt.token, tt.body)
			require.Equal(t, tt.wantStatus, code, "%v", body)
			require.Equal(t, tt.wantCode, body["code"], "%v", body)
			msg, _ := body["message"].(string)
			require.Contains(t, msg, tt.wantMessage)
			requireCleanMessage(t, msg)
			require.Len(t, body, 2, "only code and message: %v", body)
		})
	}
	// Unauthenticated answers carry a proper challenge, not the message.
	resp, err := http.Get(srv.URL + "/v1/orgs/acme/balance")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, `Bearer realm="tally"`, resp.Header.Get("WWW-Authenticate"))
}
