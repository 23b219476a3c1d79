package gateway

import (
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
)

func strictDecoder() strictJSON {
	return strictJSON{&runtime.JSONPb{UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false}}}
}

func TestStrictJSONIntegers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		into    func() any
		body    string
		wantErr string
	}{
		{"digits as a string", func() any { return &ledgerv1.CreditRequest{} }, `{"amount":{"units":"1000","nanos":5}}`, ""},
		{"digits as a number", func() any { return &ledgerv1.CreditRequest{} }, `{"amount":{"units":-1000,"nanos":-5}}`, ""},
		{"exponent string", func() any { return &ledgerv1.CreditRequest{} }, `{"amount":{"units":"1e3"}}`, "amount.units must be an integer"},
		{"exponent number", func() any { return &ledgerv1.CreditRequest{} }, `{"amount":{"units":1E3}}`, "amount.units must be an integer"},
		{"fraction", func() any { return &ledgerv1.CreditRequest{} }, `{"amount":{"nanos":1.0}}`, "amount.nanos must be an integer"},
		{"plus sign", func() any { return &ledgerv1.CreditRequest{} }, `{"amount":{"units":"+1"}}`, "amount.units must be an integer"},
		{"hex", func() any { return &ledgerv1.CreditRequest{} }, `{"amount":{"units":"0x10"}}`, "amount.units must be an integer"},
		{"proto field names", func() any { return &ledgerv1.ListTransactionsRequest{} }, `{"page_size":2.5}`, "page_size must be an integer"},
		{"enum by name", func() any { return &ledgerv1.CreditRequest{} }, `{"source":"CREDIT_SOURCE_GRANT"}`, ""},
		{"enum by number", func() any { return &ledgerv1.CreditRequest{} }, `{"source":2}`, ""},
		{"enum number in exponent", func() any { return &ledgerv1.CreditRequest{} }, `{"source":2e0}`, "source must be an enum value name or number"},
		{"list of messages", func() any { return &pricingv1.SetModelPriceRequest{} }, `{"dimensions":[{"per":"1000"},{"per":"1e6"}]}`,
			"dimensions[1].per must be an integer"},
		{"timestamps stay strings", func() any { return &pricingv1.SetModelPriceRequest{} }, `{"effectiveFrom":"2026-12-01T00:00:00Z"}`, ""},
		{"a body field (**T)", func() any { var p *paymentsv1.BillingProfile; return &p }, `{"legalName":"Acme"}`, ""},
		{"empty body", func() any { return &ledgerv1.CreditRequest{} }, ``, "EOF"},
		{"trailing data", func() any { return &ledgerv1.CreditRequest{} }, `{}0`, "more than one JSON value"},
		{"two objects", func() any { return &ledgerv1.CreditRequest{} }, `{} {"reason":"x"}`, "more than one JSON value"},
		{"not JSON is the decoder's", func() any { return &ledgerv1.CreditRequest{} }, `{"amount":`, "the request body is not valid JSON for CreditRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := strictDecoder().NewDecoder(strings.NewReader(tt.body)).Decode(tt.into())
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			if tt.wantErr == "EOF" {
				require.True(t, errors.Is(err, io.EOF))
				return
			}
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, wantErr string
	}{
		{"/v1/orgs/acme/balance?pageSize=10&pageToken=abc", ""},
		{"/v1/pricing/models/mod%C3%A8le", ""},
		{"/v1/orgs/%FF/balance", "the path is not valid UTF-8"},
		{"/v1/orgs/a%09b/balance", "the path contains a control character"},
		{"/v1/x?q=%E2%80%8F", `query parameter "q" contains a bidirectional control character (U+200F)`},
		{"/v1/x?" + strings.Repeat("k", 40) + "=%00", `query parameter "` + strings.Repeat("k", 32) + `"… contains a NUL character`},
		{"/v1/x?q=%", "the query string is not validly percent-encoded"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.raw)
		require.NoError(t, err, tt.raw)
		err = checkURL(u)
		if tt.wantErr == "" {
			require.NoError(t, err, tt.raw)
			continue
		}
		require.EqualError(t, err, tt.wantErr, tt.raw)
	}
}

// FuzzStrictJSON decodes arbitrary bodies into the REST requests: never a panic, and what the
// strict decoder accepts protojson accepts too.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{"amount":{"currencyCode":"USD","units":"1"},"idempotencyKey":"k"}`, `{"amount":{"units":1e3}}`,
		`{"dimensions":[{"per":1.5}]}`, `{"source":2}`, `[]`, `"x"`, `{"metadata":{"a":"b"}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, m := range []proto.Message{&ledgerv1.CreditRequest{}, &pricingv1.SetModelPriceRequest{}, &ledgerv1.DebitRequest{}} {
			err := strictDecoder().NewDecoder(strings.NewReader(body)).Decode(m)
			if err == nil {
				if perr := protojson.Unmarshal([]byte(body), proto.Clone(m).ProtoReflect().New().Interface()); perr != nil {
					t.Fatalf("accepted what protojson refuses: %v", perr)
				}
			}
		}
	})
}
