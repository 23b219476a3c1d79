package grpcapi_test

import (
	"testing"
	"time"

	moneypb "google.golang.org/genproto/googleapis/type/money"

	"github.com/tallyhq/tally/pkg/auth"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

const badBytesSecret = "pricing-badbytes-secret-0123456789"

// TestAttack_BadBytes sends NUL, invalid UTF-8, bidi and control characters in every string field
// of every PricingService request, each found from the proto descriptors, to a real pricing
// service: each is InvalidArgument naming the field, and no row is written.
func TestAttack_BadBytes(t *testing.T) {
	t.Parallel()
	p := pricingtest.Start(t, pricingtest.Options{Secret: badBytesSecret})
	conn, err := rpcclient.Dial(p.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ops, err := auth.Mint([]byte(badBytesSecret), auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	usd := &moneypb.Money{CurrencyCode: "USD", Nanos: 120_000}
	textchecktest.Attack(t, textchecktest.Target{
		Service: pricingv1.File_tally_pricing_v1_pricing_proto.Services().ByName("PricingService"),
		Conn:    conn,
		Rows:    textchecktest.RowCounts(p.DatabaseURL, "pricing"),
		Calls: map[string]textchecktest.Call{
			"ListModelPrices":    {Request: &pricingv1.ListModelPricesRequest{}},
			"GetModelPrice":      {Request: &pricingv1.GetModelPriceRequest{ModelId: "llama-3.1-8b-instruct"}},
			"ListInstancePrices": {Request: &pricingv1.ListInstancePricesRequest{}},
			"Quote": {Request: &pricingv1.QuoteRequest{ModelId: "llama-3.1-8b-instruct",
				Usage: map[string]string{"input_tokens": "1200"}}},
			"SetModelPrice": {Token: ops, Request: &pricingv1.SetModelPriceRequest{ModelId: "badbytes-model", DisplayName: "Bad Bytes",
				Modality: pricingv1.Modality_MODALITY_LLM, Reason: "launch", IdempotencyKey: "bb-1",
				Dimensions: []*pricingv1.PriceDimension{{Unit: "input_tokens", Price: usd, Per: 1_000_000}}}},
			"SetInstancePrice": {Token: ops, Request: &pricingv1.SetInstancePriceRequest{InstanceTypeId: "badbytes-gpu", Description: "One GPU",
				Gpu: "H100", GpuCount: 1, Vcpu: 8, MemoryGib: 64, HourlyPrice: &moneypb.Money{CurrencyCode: "USD", Units: 2},
				Reason: "launch", IdempotencyKey: "bb-2"}},
			"WatchCatalog": {Token: ops, Request: &pricingv1.WatchCatalogRequest{}},
		},
	})
}
