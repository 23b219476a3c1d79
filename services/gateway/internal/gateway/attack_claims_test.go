package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestAttackClaimsParsedExactlyOverREST sends genuinely signed tokens with case-folded,
// duplicated and mistyped claims through the gateway: every write and read is 401 with a plain
// message, and no checkout session is created.
func TestAttackClaimsParsedExactlyOverREST(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	now := time.Now().Unix()
	times := fmt.Sprintf(`"iat":%d,"exp":%d`, now, now+3600)
	attacks := []struct {
		name   string
		claims string
	}{
		{"case-folded org_id", `{"sub":"mallory",` + times + `,"roles":["admin"],"ORG_ID":"acme"}`},
		{"capitalised roles", `{"sub":"mallory","org_id":"acme",` + times + `,"Roles":["admin"]}`},
		{"roles with an underscore", `{"sub":"mallory","org_id":"acme",` + times + `,"ROLE_S":["admin"]}`},
		{"duplicated org_id", `{"sub":"mallory",` + times + `,"roles":["admin"],"org_id":"mallory-inc","org_id":"acme"}`},
		{"duplicated roles", `{"sub":"mallory","org_id":"acme",` + times + `,"roles":[],"roles":["admin"]}`},
		{"duplicated sub", `{"sub":"mallory","sub":"user-ada","org_id":"acme",` + times + `,"roles":["member"]}`},
		{"org_id a number", `{"sub":"mallory","org_id":7,` + times + `,"roles":["member"]}`},
		{"roles a string", `{"sub":"mallory","org_id":"acme",` + times + `,"roles":"member"}`},
		{"no exp", fmt.Sprintf(`{"sub":"mallory","org_id":"acme","roles":["member"],"iat":%d}`, now)},
		{"ten-year token", fmt.Sprintf(`{"sub":"mallory","org_id":"acme","roles":["member"],"iat":%d,"exp":%d}`, now, now+10*365*86400)},
	}
	requests := []struct{ method, path, body string }{
		{"POST", "/v1/orgs/acme/checkout-sessions", `{"amount":{"currencyCode":"USD","units":"25"}}`},
		{"GET", "/v1/orgs/acme/balance", ""},
		{"GET", "/v1/orgs/acme/payments", ""},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			tok := ledgertest.RawToken(a.claims)
			for _, r := range requests {
				code, body := do(t, r.method, s.gw.URL+r.path, tok, r.body)
				require.Equal(t, http.StatusUnauthorized, code, "%s %s: %v", r.method, r.path, body)
				require.Equal(t, "invalid token", body["message"], "%s %s: a plain message", r.method, r.path)
			}
		})
	}

	member := ledgertest.Token(t, auth.Claims{Subject: "user-ada", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	code, list := do(t, "GET", s.gw.URL+"/v1/orgs/acme/payments", member, "")
	require.Equal(t, http.StatusOK, code, "%v", list)
	require.Empty(t, list["payments"], "no checkout session was created")

	// The same request with a proper token does create one, so the check above can fail.
	code, session := do(t, "POST", s.gw.URL+"/v1/orgs/acme/checkout-sessions", member, `{"amount":{"currencyCode":"USD","units":"25"}}`)
	require.Equal(t, http.StatusOK, code, "%v", session)
	_, list = do(t, "GET", s.gw.URL+"/v1/orgs/acme/payments", member, "")
	require.Len(t, list["payments"], 1)
	require.False(t, strings.Contains(fmt.Sprint(list), "mallory"))
}
