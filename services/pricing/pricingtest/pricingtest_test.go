package pricingtest_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/clock"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// The harness's clock is the service's business clock: "now" of a price list is its reading.
func TestOptionsNowIsTheServicesClock(t *testing.T) {
	t.Parallel()
	at := time.Now().UTC().Add(365 * 24 * time.Hour).Truncate(time.Second)
	clk := clock.NewManual(at)
	p := pricingtest.Start(t, pricingtest.Options{Secret: "pricingtest-secret-0123456789abcdef", Now: clk.Now})
	resp, err := p.Client(t, "").ListModelPrices(t.Context(), &pricingv1.ListModelPricesRequest{})
	require.NoError(t, err)
	require.Equal(t, at, resp.GetAt().AsTime())
	clk.Advance(time.Hour)
	resp, err = p.Client(t, "").ListModelPrices(t.Context(), &pricingv1.ListModelPricesRequest{})
	require.NoError(t, err)
	require.Equal(t, at.Add(time.Hour), resp.GetAt().AsTime())
	require.NoError(t, p.Stop())
	require.NoError(t, p.Stop(), "stopping twice is stopping once")
}
