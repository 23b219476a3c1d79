package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/clock"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient/ledgerclienttest"
	"github.com/tallyhq/tally/services/instances-metering/internal/service"
	"github.com/tallyhq/tally/services/instances-metering/meteringtest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// meteringtest's Options.Now is the meter's business clock: a rental starts at its reading and
// its next period is one billing period later, whatever the wall clock says.
func TestOptionsNowIsTheMetersClock(t *testing.T) {
	t.Parallel()
	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})
	at := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second)
	clk := clock.NewManual(at)
	m := meteringtest.Start(t, meteringtest.Options{
		DatabaseURL: p.DatabaseURL, Secret: ledgertest.Secret, LedgerAddr: ledgerclienttest.Start(t).Addr(), PricingAddr: p.Addr,
		Now: clk.Now, Configure: func(c *service.Config) { c.BillingPeriod = time.Hour },
	})
	c := m.Client(t, ledgertest.ServiceToken(t, "instance-controller"))
	resp, err := c.StartMetering(t.Context(), &instancesv1.StartMeteringRequest{
		InstanceId: "i-clock", OrgId: "acme", InstanceType: a10g, IdempotencyKey: "start-i-clock",
	})
	require.NoError(t, err)
	r := resp.GetRental()
	require.Equal(t, at, r.GetStartedAt().AsTime())
	require.Equal(t, at.Add(time.Hour), r.GetNextPeriodAt().AsTime())
	require.EqualValues(t, 1, r.GetPeriodsCharged())
}
