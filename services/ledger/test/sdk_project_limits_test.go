package test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/client"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// The SDK names a project on Authorize and Reserve, and a streamed debit refused at its project's
// limit carries the project, as a unary Debit's ErrorInfo does.
func TestSDKProjectLimits(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	const org = "sdkprojects"
	credit(t, l.Client(t, ledgertest.OpsToken(t)), org, 100*unit, "seed")
	setProjectLimit(t, l.Client(t, ledgertest.Token(t, adminClaims(org))), org, "alpha", 10*unit)
	sdk, reg := sdkClientWithMetrics(t, l.Addr)
	alpha := map[string]string{"project": "alpha"}

	_, err := sdk.Debit(t.Context(), client.Debit{OrgID: org, Amount: usdMoney(10 * unit), IdempotencyKey: "fill", Metadata: alpha, RequireFunds: true})
	require.NoError(t, err)
	_, err = sdk.Debit(t.Context(), client.Debit{OrgID: org, Amount: usdMoney(unit), IdempotencyKey: "over", Metadata: alpha, RequireFunds: true})
	require.ErrorIs(t, err, client.ErrFailedPrecondition)
	require.Equal(t, alpha, client.ErrorMetadata(err))
	requireStreamed(t, reg)

	for _, tc := range []struct {
		project string
		allowed bool
	}{{"alpha", false}, {"beta", true}, {"", true}} {
		az, err := sdk.Authorize(t.Context(), client.AuthorizeRequest{OrgID: org, Amount: usdMoney(unit), Project: tc.project})
		require.NoError(t, err, tc.project)
		require.Equal(t, tc.allowed, az.Allowed, "Authorize of project %q", tc.project)

		_, err = sdk.Reserve(t.Context(), client.ReserveRequest{OrgID: org, Amount: usdMoney(unit), IdempotencyKey: "hold-" + tc.project, Project: tc.project})
		if tc.allowed {
			require.NoError(t, err, "Reserve of project %q", tc.project)
		} else {
			require.ErrorIs(t, err, client.ErrFailedPrecondition, "Reserve of project %q", tc.project)
		}
	}
}
