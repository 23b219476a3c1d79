package test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestUsageSummaryPerProject attributes debits and captures carrying the metadata "project" to
// their project, apart from the days' totals, which count each charge once.
func TestUsageSummaryPerProject(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	pool, err := pgxpool.New(t.Context(), l.DatabaseURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "projects"
	credit(t, ops, org, 100*unit, "seed")
	for key, d := range map[string]struct {
		amount int64
		meta   map[string]string
	}{
		"a1": {2, map[string]string{"project": "alpha", "model_id": "llm-1"}},
		"b1": {1, map[string]string{"project": "beta"}},
		"n1": {4, map[string]string{"model_id": "llm-1"}},
	} {
		_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(unit * 1), IdempotencyKey: key, Metadata: d.meta})
		require.NoError(t, err)
		for i := int64(1); i < d.amount; i++ {
			_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(unit), IdempotencyKey: key + "-" + string(rune('a'+i)), Metadata: d.meta})
			require.NoError(t, err)
		}
	}
	hold, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: org, Amount: usd(unit), IdempotencyKey: "h"})
	require.NoError(t, err)
	_, err = svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: hold.GetHold().GetId(), Amount: usd(unit), IdempotencyKey: "c",
		Metadata: map[string]string{"project": "alpha"}})
	require.NoError(t, err)

	waitUsageCounted(t, pool)
	s := summary(t, ops, org, 1)
	require.Len(t, s.GetDays(), 1)
	require.Equal(t, 8*unit, nanos(t, s.GetDays()[0].GetTotal()), "a charge with a project counts once in the day's total")
	projects := s.GetProjects()
	require.Len(t, projects, 2)
	require.Equal(t, "project", projects[0].GetKind())
	require.Equal(t, "alpha", projects[0].GetId())
	require.Equal(t, 3*unit, nanos(t, projects[0].GetAmount()))
	require.Equal(t, int64(3), projects[0].GetCount())
	require.Equal(t, "beta", projects[1].GetId())
	require.Equal(t, unit, nanos(t, projects[1].GetAmount()))
	for _, item := range s.GetTotals() {
		require.NotEqual(t, "project", item.GetKind())
	}
}
