package gateway

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCleanDecodeError(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("z", 200)
	tests := []struct{ in, want string }{
		{"proto: (line 1:2): unknown field \"bogus\"", `the request body has an unknown field "bogus"`},
		{"proto:\u00a0(line 1:2): unknown field \"bogus\"", `the request body has an unknown field "bogus"`},
		{"proto: (line 1:2): unknown field \"" + long + "\"", `the request body has an unknown field "` + strings.Repeat("z", 32) + `"`},
		{"proto: (line 1:12): invalid value for int64 field units: \"1e3\"", "the request body has an invalid value for units"},
		{"proto: (line 1:12): invalid google.protobuf.Timestamp value \"yesterday\"", "the request body has an invalid timestamp value"},
		{"proto: syntax error (line 1:9): unexpected token }", "the request body is not valid JSON"},
		{"proto: syntax error (line 1:13): invalid UTF-8 in string", "the request body contains invalid UTF-8"},
		{"proto: exceeded max recursion depth", "the request body is nested too deeply"},
		{"proto: (line 1:1): something new", "the request body does not match the request"},
		{"invalid character 'x' looking for beginning of value", "the request body is not valid JSON"},
		{"unexpected EOF", "the request body is not valid JSON"},
		{"invalid character '[' exceeded max depth", "the request body is nested too deeply"},
		{"type mismatch, parameter: org_id, error: bad", "invalid path parameter org_id"},
		{"missing parameter org_id", "missing path parameter org_id"},
		{`parsing field "page_size": strconv.ParseInt: parsing "x": invalid syntax`, "invalid value for the query parameter page_size"},
		{`too many values for field "page_size": 1, 2`, "the query parameter page_size is given more than once"},
		{`invalid path: "x" is not a message`, "invalid query parameters"},
		{"strconv.Atoi: something", "invalid query parameters"},
		{"amount: unknown currency \"QQQ\"", "amount: unknown currency \"QQQ\""}, // a service's own message
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 40)], func(t *testing.T) {
			require.Equal(t, tt.want, cleanDecodeError(tt.in))
		})
	}
}

func TestWithoutMethodNames(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"method /tally.ledger.v1.LedgerService/GetBalance: missing bearer token", "missing bearer token"},
		{"method /tally.ledger.v1.LedgerService/Debit requires a bearer token", "requires a bearer token"},
		{"caller \"u2\" may not call /tally.payments.v1.PaymentsService/RefundPayment", "caller \"u2\" may not call"},
		{"insufficient funds", "insufficient funds"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, withoutMethodNames(tt.in))
	}
}
