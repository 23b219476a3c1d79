package openapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/gen/openapi"
)

func TestOperations(t *testing.T) {
	t.Parallel()
	ops, err := openapi.Operations()
	require.NoError(t, err)
	require.Greater(t, len(ops), 20)
	byID := map[string]openapi.Operation{}
	for _, op := range ops {
		byID[op.ID] = op
	}
	require.Equal(t, openapi.Operation{ID: "PricingService_Quote", Method: "POST", Path: "/v1/pricing/quote", Public: true}, byID["PricingService_Quote"])
	require.Equal(t, openapi.Operation{ID: "LedgerService_GetBalance", Method: "GET", Path: "/v1/orgs/{orgId}/balance"}, byID["LedgerService_GetBalance"])
}

func TestSpecAndSpecYAMLAreTheSameDocument(t *testing.T) {
	t.Parallel()
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	require.NoError(t, json.Unmarshal(openapi.Spec, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.0."), doc.OpenAPI)
	require.Contains(t, string(openapi.SpecYAML), "\nopenapi: "+doc.OpenAPI+"\n")
}

func TestCheckPolicy(t *testing.T) {
	t.Parallel()
	const pricing = "tally.pricing.v1.PricingService"
	publicReads := map[string]bool{"ListModelPrices": true, "GetModelPrice": true, "ListInstancePrices": true, "Quote": true}
	tests := []struct {
		name    string
		service string
		rule    func(method string) (listed, public bool)
		wantErr []string
	}{
		{"the pricing policy", pricing, func(m string) (bool, bool) { return true, publicReads[m] }, nil},
		{"a public method the document protects", "tally.ledger.v1.LedgerService",
			func(m string) (bool, bool) { return true, m == "GetBalance" },
			[]string{"/tally.ledger.v1.LedgerService/GetBalance is public", "add LedgerService_GetBalance"}},
		{"a protected method the document calls public", pricing,
			func(m string) (bool, bool) { return true, publicReads[m] && m != "Quote" },
			[]string{"/tally.pricing.v1.PricingService/Quote needs a token", "remove PricingService_Quote"}},
		{"a route missing from the policy", pricing,
			func(m string) (bool, bool) { return m != "Quote", publicReads[m] },
			[]string{"/tally.pricing.v1.PricingService/Quote (POST /v1/pricing/quote) is not in the policy"}},
		{"a service without routes", "tally.nothing.v1.NothingService",
			func(string) (bool, bool) { return true, false },
			[]string{"no operation of tally.nothing.v1.NothingService"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := openapi.CheckPolicy(tt.service, func(fullMethod string) (bool, bool) {
				m, ok := strings.CutPrefix(fullMethod, "/"+tt.service+"/")
				require.True(t, ok, fullMethod)
				return tt.rule(m)
			})
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
		})
	}
}
