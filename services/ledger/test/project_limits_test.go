package test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func setProjectLimit(t testing.TB, c ledgerv1.LedgerServiceClient, org, project string, limit money.Nanos) *ledgerv1.ProjectLimitStatus {
	t.Helper()
	r, err := c.SetProjectLimit(t.Context(), &ledgerv1.SetProjectLimitRequest{OrgId: org, Project: project, Limit: usd(limit)})
	require.NoError(t, err)
	return r.GetProjectLimit()
}

func errorInfo(t testing.TB, err error) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	t.Fatalf("no ErrorInfo in %v", err)
	return nil
}

func projectDebit(org, project, key string, n money.Nanos, requireFunds bool) *ledgerv1.DebitRequest {
	return &ledgerv1.DebitRequest{OrgId: org, Amount: usd(n), IdempotencyKey: key, RequireFunds: requireFunds,
		Metadata: map[string]string{"project": project}}
}

// A project's monthly limit refuses its require_funds debits and its authorizations once its
// charges reach it (under the account's lock: concurrent debits never pass it), names the
// project, leaves other projects and untagged calls alone, and still records usage that already
// happened.
func TestProjectLimitRefusesOnlyItsProject(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "projects"
	admin := l.Client(t, ledgertest.Token(t, adminClaims(org)))
	member := l.Client(t, ledgertest.Token(t, memberClaims(org)))
	credit(t, ops, org, 1000*unit, "seed")

	_, err := member.SetProjectLimit(t.Context(), &ledgerv1.SetProjectLimitRequest{OrgId: org, Project: "alpha", Limit: usd(unit)})
	requireCode(t, err, codes.PermissionDenied)
	st := setProjectLimit(t, admin, org, "alpha", 10*unit)
	require.Equal(t, 10*unit, nanos(t, st.GetLimit()))
	require.False(t, st.GetReached())

	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = svc.Debit(t.Context(), projectDebit(org, "alpha", fmt.Sprintf("a-%d", i), unit, true))
		})
	}
	wg.Wait()
	accepted := 0
	for _, err := range errs {
		if err == nil {
			accepted++
			continue
		}
		requireSpendLimitReached(t, err)
		require.Contains(t, status.Convert(err).Message(), `project "alpha"`)
		require.Equal(t, map[string]string{"project": "alpha"}, errorInfo(t, err).GetMetadata())
	}
	require.Equal(t, 10, accepted, "the project's limit is never passed by require_funds debits")

	auth := func(project string) *ledgerv1.AuthorizeResponse {
		r, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: org, Amount: usd(unit), Project: project})
		require.NoError(t, err)
		return r
	}
	require.False(t, auth("alpha").GetAllowed())
	require.Equal(t, "SPEND_LIMIT_REACHED", auth("alpha").GetDenialReason())
	require.True(t, auth("beta").GetAllowed())
	require.True(t, auth("").GetAllowed())
	_, err = svc.Debit(t.Context(), projectDebit(org, "beta", "b-1", unit, true))
	require.NoError(t, err, "another project is not limited")
	_, err = svc.Debit(t.Context(), projectDebit(org, "alpha", "usage-1", 2*unit, false))
	require.NoError(t, err, "usage that already happened is recorded")

	list, err := member.ListProjectLimits(t.Context(), &ledgerv1.ListProjectLimitsRequest{OrgId: org})
	require.NoError(t, err)
	require.Len(t, list.GetProjectLimits(), 1)
	alpha := list.GetProjectLimits()[0]
	require.Equal(t, "alpha", alpha.GetProject())
	require.Equal(t, 12*unit, nanos(t, alpha.GetMonthSpend()))
	require.Zero(t, nanos(t, alpha.GetRemaining()))
	require.True(t, alpha.GetReached())

	st = setProjectLimit(t, admin, org, "alpha", 20*unit)
	require.Equal(t, 12*unit, nanos(t, st.GetMonthSpend()), "raising the limit keeps the month's charges")
	require.True(t, auth("alpha").GetAllowed())
	setProjectLimit(t, admin, org, "alpha", 0)
	list, err = member.ListProjectLimits(t.Context(), &ledgerv1.ListProjectLimitsRequest{OrgId: org})
	require.NoError(t, err)
	require.Empty(t, list.GetProjectLimits())
}

// A project's limit and its charges of the month move with the organization to another shard.
func TestProjectLimitMovesWithTheOrganization(t *testing.T) {
	t.Parallel()
	urls, shards := ledgertest.TwoShards(t)
	l := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], Shards: shards})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	org := orgOnShard(t, "projmove", "a")
	admin := l.Client(t, ledgertest.Token(t, adminClaims(org)))
	credit(t, ops, org, 100*unit, "seed")
	setProjectLimit(t, admin, org, "alpha", 5*unit)
	_, err := svc.Debit(t.Context(), projectDebit(org, "alpha", "before-move", 3*unit, true))
	require.NoError(t, err)

	_, err = ops.MoveOrganization(t.Context(), &ledgerv1.MoveOrganizationRequest{OrgId: org, ToShard: "b", IdempotencyKey: "move-1"})
	require.NoError(t, err)
	list, err := admin.ListProjectLimits(t.Context(), &ledgerv1.ListProjectLimitsRequest{OrgId: org})
	require.NoError(t, err)
	require.Len(t, list.GetProjectLimits(), 1)
	require.Equal(t, 3*unit, nanos(t, list.GetProjectLimits()[0].GetMonthSpend()))
	_, err = svc.Debit(t.Context(), projectDebit(org, "alpha", "after-move", 3*unit, true))
	requireSpendLimitReached(t, err)
	_, err = svc.Debit(t.Context(), projectDebit(org, "alpha", "after-move-2", 2*unit, true))
	require.NoError(t, err)
}
