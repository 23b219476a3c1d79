package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestRESTUsagePage drives the Usage page's two reads over REST: the usage summary (every day
// present, lowerCamel JSON, units as a string) and the history filtered by kind.
func TestRESTUsagePage(t *testing.T) {
	t.Parallel()
	srv, _ := startGateway(t)
	ops := ledgertest.OpsToken(t)
	member := ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	stranger := ledgertest.Token(t, auth.Claims{Subject: "u2", OrgID: "globex", Roles: []auth.Role{auth.RoleMember}})
	code, body := do(t, "POST", srv.URL+"/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"5"},"idempotencyKey":"rest-usage","reason":"grant"}`)
	require.Equal(t, http.StatusOK, code, "%v", body)

	for _, tt := range []struct {
		name, path, token string
		want, days        int
	}{
		{"default window", "/v1/orgs/acme/usage-summary", member, http.StatusOK, 30},
		{"a week", "/v1/orgs/acme/usage-summary?days=7", member, http.StatusOK, 7},
		{"ops", "/v1/orgs/acme/usage-summary?days=90", ops, http.StatusOK, 90},
		{"too many days", "/v1/orgs/acme/usage-summary?days=91", member, http.StatusBadRequest, 0},
		{"no days", "/v1/orgs/acme/usage-summary?days=-1", member, http.StatusBadRequest, 0},
		{"other org", "/v1/orgs/acme/usage-summary", stranger, http.StatusForbidden, 0},
		{"no token", "/v1/orgs/acme/usage-summary", "", http.StatusUnauthorized, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, "GET", srv.URL+tt.path, tt.token, "")
			require.Equal(t, tt.want, code, "%v", body)
			if code != http.StatusOK {
				return
			}
			require.Equal(t, "acme", body["orgId"])
			require.Equal(t, "USD", body["currencyCode"])
			require.Equal(t, time.Now().UTC().Format("2006-01-02"), body["to"])
			days := body["days"].([]any)
			require.Len(t, days, tt.days)
			last := days[len(days)-1].(map[string]any)
			require.Equal(t, body["to"], last["day"])
			require.Equal(t, "USD", last["total"].(map[string]any)["currencyCode"])
		})
	}
	code, txs := do(t, "GET", srv.URL+"/v1/orgs/acme/transactions?kind=TRANSACTION_KIND_CREDIT", member, "")
	require.Equal(t, http.StatusOK, code, "%v", txs)
	require.Len(t, txs["transactions"], 1)
	require.Equal(t, "TRANSACTION_KIND_CREDIT", txs["transactions"].([]any)[0].(map[string]any)["kind"])
	code, txs = do(t, "GET", srv.URL+"/v1/orgs/acme/transactions?kind=TRANSACTION_KIND_DEBIT", member, "")
	require.Equal(t, http.StatusOK, code, "%v", txs)
	require.Empty(t, txs["transactions"])
}
