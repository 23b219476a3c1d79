package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

type badBytesCase struct {
	name, method, path, token, body string
	// wantInMessage is part of the error message ("" to only check the status).
	wantInMessage string
}

// badBytesCases are the refused requests: bad bytes in bodies, paths and query strings, loosely
// written integers, enums and currencies.
func badBytesCases(ops, member, admin string) []badBytesCase {
	credit := func(fields string) string {
		return `{"amount":{"currencyCode":"USD","units":"12"},"idempotencyKey":"rest-1","reason":"grant"` + fields + `}`
	}
	return []badBytesCase{
		// bodies
		{"NUL in a key", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"1"},"idempotencyKey":"a\u0000b"}`,
			"idempotency_key contains a NUL character"},
		{"escape in a key", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"1"},"idempotencyKey":"a\u001b[2Jb"}`,
			"idempotency_key contains a control character (U+001B)"},
		{"invalid UTF-8 in a reason", "POST", "/v1/orgs/acme/credits", ops, credit(`,"reference":"a` + "\xff" + `b"`), ""},
		{"bidi override in a reason", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"1"},"idempotencyKey":"k","reason":"a\u202Eb"}`,
			"reason contains a bidirectional control character (U+202E)"},
		{"line separator in a reason", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"1"},"idempotencyKey":"k","reason":"a\u2028b"}`,
			"reason contains a line or paragraph separator (U+2028)"},
		{"units in exponent notation as a string", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"1e3"},"idempotencyKey":"k"}`,
			"amount.units must be an integer written in digits"},
		{"units in exponent notation as a number", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":1e3},"idempotencyKey":"k"}`,
			"amount.units must be an integer written in digits"},
		{"nanos with a fraction", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"1","nanos":5.0},"idempotencyKey":"k"}`,
			"amount.nanos must be an integer written in digits"},
		{"units with spaces", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":" 1"},"idempotencyKey":"k"}`,
			"amount.units must be an integer written in digits"},
		{"lower-case currency", "POST", "/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"usd","units":"1"},"idempotencyKey":"k"}`,
			`unknown currency "usd"`},
		{"unknown enum number", "POST", "/v1/orgs/acme/credits", ops, credit(`,"source":7`), "source is not a known value (7)"},
		{"enum number with a fraction", "POST", "/v1/orgs/acme/credits", ops, credit(`,"source":2.0`), "source must be an enum value name or number"},
		{"unknown enum name", "POST", "/v1/orgs/acme/credits", ops, credit(`,"source":"CREDIT_SOURCE_GIFT"`), ""},
		{"unknown field", "POST", "/v1/orgs/acme/credits", ops, credit(`,"bonus":true`), ""},
		{"bidi in a billing profile", "PUT", "/v1/orgs/acme/billing-profile", admin, `{"legalName":"Acme\u202Ecorp"}`,
			"legal_name contains a bidirectional control character (U+202E)"},
		{"integer as exponent in a quote", "POST", "/v1/pricing/quote", "", `{"modelId":"llama-3.1-8b-instruct","usage":{"input_tokens":"1e3"}}`,
			`invalid quantity "1e3"`},
		{"control character in a quoted model", "POST", "/v1/pricing/quote", "", `{"modelId":"llama\u0007","usage":{"input_tokens":"1"}}`,
			"model_id contains a control character (U+0007)"},
		// paths
		{"invalid UTF-8 in a path", "GET", "/v1/orgs/%FF/balance", member, "", "the path is not valid UTF-8"},
		{"invalid UTF-8 in a write's path", "POST", "/v1/orgs/%C3%28/credits", ops, credit(""), "the path is not valid UTF-8"},
		{"NUL in a path", "GET", "/v1/orgs/ac%00me/balance", member, "", "the path contains a NUL character"},
		{"newline in a path", "GET", "/v1/orgs/ac%0Ame/balance", member, "", "the path contains a control character"},
		{"bidi in a path", "GET", "/v1/orgs/%E2%80%AEacme/balance", member, "", "the path contains a bidirectional control character (U+202E)"},
		{"bidi in a model path", "GET", "/v1/pricing/models/llama%E2%81%A6", "", "", "the path contains a bidirectional control character (U+2066)"},
		// query strings
		{"invalid UTF-8 in a query value", "GET", "/v1/orgs/acme/transactions?pageToken=%FF", member, "", `query parameter "pageToken" is not valid UTF-8`},
		{"NUL in a query value", "GET", "/v1/orgs/acme/transactions?pageToken=1%00", member, "", `query parameter "pageToken" contains a NUL character`},
		{"invalid UTF-8 in a query name", "GET", "/v1/orgs/acme/transactions?%FF=1", member, "", "a query parameter name is not valid UTF-8"},
		{"bad percent-encoding", "GET", "/v1/orgs/acme/transactions?pageSize=%ZZ", member, "", "the query string is not validly percent-encoded"},
		{"page size in exponent notation", "GET", "/v1/orgs/acme/transactions?pageSize=1e3", member, "", ""},
	}
}

// TestAttack_BadBytesREST sends bad bytes through the gateway in bodies, paths and query strings,
// and integers, enums and currencies written loosely: each is a 400 with a JSON error that
// names what is wrong without echoing it, and nothing is written.
func TestAttack_BadBytesREST(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	ops := ledgertest.OpsToken(t)
	member := ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	admin := ledgertest.Token(t, auth.Claims{Subject: "a1", OrgID: "acme", Roles: []auth.Role{auth.RoleAdmin}})
	require.Eventually(t, func() bool {
		code, _ := do(t, "GET", s.gw.URL+"/v1/orgs/acme/payments", member, "")
		return code == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "payments serves (its schema is migrated)")
	ledgerRows := ledgertest.RowCounts(s.ledger.DatabaseURL)
	paymentRows := textchecktest.RowCounts(s.paymentsDB, "payments")
	ledgerBefore, paymentsBefore := ledgerRows(t), paymentRows(t)

	tests := badBytesCases(ops, member, admin)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, s.gw.URL+tt.path, tt.token, tt.body)
			require.Equal(t, http.StatusBadRequest, code, "%v", body)
			require.Equal(t, "INVALID_ARGUMENT", body["code"])
			msg, _ := body["message"].(string)
			require.NotEmpty(t, msg)
			require.Contains(t, msg, tt.wantInMessage)
			for _, bad := range []string{"\x00", "\xff", "\u202e", "\u2066", "\x1b", "\u2028", "\a"} {
				require.NotContains(t, msg, bad, "the message does not echo the bad bytes")
			}
		})
	}
	require.Equal(t, ledgerBefore, ledgerRows(t), "refused requests wrote ledger rows")
	require.Equal(t, paymentsBefore, paymentRows(t), "refused requests wrote payments rows")

	// The same requests written properly pass.
	code, body := do(t, "POST", s.gw.URL+"/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":"12","nanos":500000000},"idempotencyKey":"rest-ok","reason":"grant\nline two","source":"CREDIT_SOURCE_GRANT"}`)
	require.Equal(t, http.StatusOK, code, "%v", body)
	code, body = do(t, "POST", s.gw.URL+"/v1/orgs/acme/credits", ops, `{"amount":{"currencyCode":"USD","units":3,"nanos":-0},"idempotencyKey":"rest-ok-2","source":2}`)
	require.Equal(t, http.StatusOK, code, "%v", body)
	code, body = do(t, "GET", s.gw.URL+"/v1/orgs/acme/transactions?pageSize=10", member, "")
	require.Equal(t, http.StatusOK, code, "%v", body)
	code, body = do(t, "PUT", s.gw.URL+"/v1/orgs/acme/billing-profile", admin, `{"legalName":"Müller & Söhne GmbH","address":"Hauptstraße 1\n10115 Berlin"}`)
	require.Equal(t, http.StatusOK, code, "%v", body)
}
