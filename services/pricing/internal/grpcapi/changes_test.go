package grpcapi

import (
	"testing"
	"time"

	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/catalog"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/pkg/textcheck"
)

var fuzzNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// validateChange is what the pricing service checks of a write before it reaches the database.
func validateChange(m proto.Message) (catalog.ModelVersion, catalog.InstanceVersion, error) {
	switch req := m.(type) {
	case *pricingv1.SetModelPriceRequest:
		c, err := modelChange(req, "ops-1")
		if err == nil {
			c, _, err = c.Prepare(fuzzNow)
		}
		return c.Version, catalog.InstanceVersion{}, err
	case *pricingv1.SetInstancePriceRequest:
		c, err := instanceChange(req, "ops-1")
		if err == nil {
			c, _, err = c.Prepare(fuzzNow)
		}
		return catalog.ModelVersion{}, c.Version, err
	}
	panic("not a write request")
}

func TestPriceChangeValidation(t *testing.T) {
	t.Parallel()
	usd := &moneypb.Money{CurrencyCode: "USD", Nanos: 1000}
	dims := []*pricingv1.PriceDimension{{Unit: "input_tokens", Price: usd, Per: 1_000_000}}
	model := func(mut func(*pricingv1.SetModelPriceRequest)) proto.Message {
		r := &pricingv1.SetModelPriceRequest{ModelId: "m-1", DisplayName: "Model One", Modality: pricingv1.Modality_MODALITY_LLM,
			Dimensions: dims, Reason: "launch", IdempotencyKey: "k-1"}
		mut(r)
		return r
	}
	instance := func(mut func(*pricingv1.SetInstancePriceRequest)) proto.Message {
		r := &pricingv1.SetInstancePriceRequest{InstanceTypeId: "gpu-1", Description: "One GPU", Gpu: "H100", GpuCount: 1, Vcpu: 8,
			MemoryGib: 64, HourlyPrice: &moneypb.Money{CurrencyCode: "USD", Units: 2}, Reason: "launch", IdempotencyKey: "k-1"}
		mut(r)
		return r
	}
	tests := []struct {
		name    string
		req     proto.Message
		wantErr string
	}{
		{"valid model", model(func(*pricingv1.SetModelPriceRequest) {}), ""},
		{"valid instance", instance(func(*pricingv1.SetInstancePriceRequest) {}), ""},
		{"multi-line reason", model(func(r *pricingv1.SetModelPriceRequest) { r.Reason = "price cut\n\tsee ticket 7" }), ""},
		{"unicode display name", model(func(r *pricingv1.SetModelPriceRequest) { r.DisplayName = "Modèle – 東京 🚀" }), ""},
		{"bidi in display name", model(func(r *pricingv1.SetModelPriceRequest) { r.DisplayName = "evil\u202Egnp.exe" }), "display_name contains a bidirectional control character (U+202E)"},
		{"NUL in reason", model(func(r *pricingv1.SetModelPriceRequest) { r.Reason = "a\x00" }), "reason contains a NUL character"},
		{"space in key", model(func(r *pricingv1.SetModelPriceRequest) { r.IdempotencyKey = "k 1" }), "idempotency_key must not contain spaces"},
		{"unspecified modality", model(func(r *pricingv1.SetModelPriceRequest) { r.Modality = 0 }), "unknown modality"},
		{"lower-case currency", model(func(r *pricingv1.SetModelPriceRequest) {
			r.Dimensions = []*pricingv1.PriceDimension{{Unit: "input_tokens", Price: &moneypb.Money{CurrencyCode: "usd", Nanos: 1}, Per: 1}}
		}), `unknown currency "usd"`},
		{"upper-case model id", model(func(r *pricingv1.SetModelPriceRequest) { r.ModelId = "Model-1" }), `id "Model-1" may hold only`},
		{"invalid effective_from", model(func(r *pricingv1.SetModelPriceRequest) { r.EffectiveFrom = &timestamppb.Timestamp{Nanos: -1} }), "effective_from is not a valid time"},
		{"control character in gpu", instance(func(r *pricingv1.SetInstancePriceRequest) { r.Gpu = "H100\x1b[2J" }), "gpu contains a control character (U+001B)"},
		{"CR in description", instance(func(r *pricingv1.SetInstancePriceRequest) { r.Description = "a\r\nb" }), "description contains a control character (U+000D)"},
		{"lower-case hourly currency", instance(func(r *pricingv1.SetInstancePriceRequest) {
			r.HourlyPrice = &moneypb.Money{CurrencyCode: "eur", Units: 1}
		}),
			`hourly_price: unknown currency "eur"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := validateChange(tt.req)
			servertest.RequireRefusal(t, Errors, err, tt.wantErr)
		})
	}
}

// FuzzPriceChanges decodes arbitrary bytes as SetModelPrice and SetInstancePrice requests and
// validates them as the service does: a refusal is always InvalidArgument, and an accepted change
// holds only valid ids, a known currency and text within the platform's rules.
func FuzzPriceChanges(f *testing.F) {
	for _, m := range []proto.Message{
		&pricingv1.SetModelPriceRequest{ModelId: "m-1", DisplayName: "Model", Modality: 1, Reason: "r", IdempotencyKey: "k",
			Dimensions: []*pricingv1.PriceDimension{{Unit: "input_tokens", Price: &moneypb.Money{CurrencyCode: "USD", Nanos: 1}, Per: 1}}},
		&pricingv1.SetInstancePriceRequest{InstanceTypeId: "gpu-1", Description: "d", Gpu: "H100", GpuCount: 1, Vcpu: 1, MemoryGib: 1,
			HourlyPrice: &moneypb.Money{CurrencyCode: "USD", Units: 1}, Reason: "r", IdempotencyKey: "k"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		for _, m := range []proto.Message{&pricingv1.SetModelPriceRequest{}, &pricingv1.SetInstancePriceRequest{}} {
			if proto.Unmarshal(wire, m) != nil {
				continue // refused by the server's codec with InvalidArgument
			}
			mv, iv, err := validateChange(m)
			if err != nil {
				if code := Errors.Code(err); code != codes.InvalidArgument {
					t.Fatalf("refused with %v: %v", code, err)
				}
				continue
			}
			texts := map[string]string{"display_name": mv.DisplayName, "description": iv.Description, "gpu": iv.GPU}
			for field, v := range texts {
				if err := textcheck.Printable(field, v); err != nil {
					t.Fatalf("accepted: %v", err)
				}
			}
			for _, id := range []string{mv.ModelID, iv.InstanceTypeID} {
				if id != "" && catalog.ValidateID(id) != nil {
					t.Fatalf("accepted id %q", id)
				}
			}
			for _, cur := range []string{mv.Currency, iv.Currency} {
				if cur != "" && !money.IsKnownCurrency(cur) {
					t.Fatalf("accepted currency %q", cur)
				}
			}
		}
	})
}
