package grpcapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
)

// TestAttack_Overflow_PricesAboveTheMaximum sets prices above TALLY_MAX_REQUEST_AMOUNT (the
// default, 1000000, and a configured 2500.5): InvalidArgument naming the limit, nothing written,
// and the key stays free; the maximum itself is accepted.
func TestAttack_Overflow_PricesAboveTheMaximum(t *testing.T) {
	t.Parallel()
	custom, err := money.ParseLimit("2500.5")
	require.NoError(t, err)
	model := func(key string, prices ...string) *pricingv1.SetModelPriceRequest {
		req := &pricingv1.SetModelPriceRequest{ModelId: "m", DisplayName: "M", Modality: pricingv1.Modality_MODALITY_LLM, Reason: "test", IdempotencyKey: key}
		for i, p := range prices {
			req.Dimensions = append(req.Dimensions, &pricingv1.PriceDimension{Unit: []string{"input_tokens", "output_tokens"}[i], Price: usd(t, p), Per: 1_000_000})
		}
		return req
	}
	instance := func(key, price string) *pricingv1.SetInstancePriceRequest {
		return &pricingv1.SetInstancePriceRequest{InstanceTypeId: "gpu-1", Description: "1 GPU", Gpu: "A100", GpuCount: 1, Vcpu: 8, MemoryGib: 64,
			HourlyPrice: usd(t, price), Reason: "test", IdempotencyKey: key}
	}
	tests := []struct {
		name  string
		limit money.Limit
		max   string
		over  string
	}{
		{"default maximum", money.Limit{}, "1000000", "1000000.000000001"},
		{"configured maximum", custom, "2500.5", "2500.500000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := startReplica(t, testenv.PostgresURL(t), newClock(), replicaOptions{maxRequestAmount: tt.limit})
			ops := r.ops(t)
			version := r.app.Catalog().Version()
			msg := "exceeds the per-request maximum of " + tt.max + " (TALLY_MAX_REQUEST_AMOUNT)"

			_, err := ops.SetModelPrice(t.Context(), model("m-over", "1", tt.over))
			requireCode(t, codes.InvalidArgument, err)
			require.ErrorContains(t, err, "dimensions[1].price "+msg)
			_, err = ops.SetModelPrice(t.Context(), model("m-huge", "9223372036.854775807"))
			requireCode(t, codes.InvalidArgument, err)
			require.ErrorContains(t, err, "dimensions[0].price "+msg)
			_, err = ops.SetInstancePrice(t.Context(), instance("i-over", tt.over))
			requireCode(t, codes.InvalidArgument, err)
			require.ErrorContains(t, err, "hourly_price "+msg)
			require.Equal(t, version, r.app.Catalog().Version(), "nothing written")

			// The maximum is accepted, and the refused keys are still free.
			m, err := ops.SetModelPrice(t.Context(), model("m-over", tt.max, tt.max))
			require.NoError(t, err)
			require.False(t, m.GetReplayed())
			i, err := ops.SetInstancePrice(t.Context(), instance("i-over", tt.max))
			require.NoError(t, err)
			got, err := money.FromProto(i.GetPrice().GetHourlyPrice())
			require.NoError(t, err)
			require.Equal(t, tt.max, got.Nanos.Decimal())
		})
	}
}
