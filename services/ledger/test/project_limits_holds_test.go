package test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func projectReserve(org, project, key string, n money.Nanos) *ledgerv1.ReserveRequest {
	return &ledgerv1.ReserveRequest{OrgId: org, Amount: usd(n), IdempotencyKey: key, Ttl: durationpb.New(time.Minute), Project: project}
}

// requireProjectLimitReached checks err is the refusal of a unary Debit over project's limit.
func requireProjectLimitReached(t testing.TB, err error, project string) {
	t.Helper()
	requireSpendLimitReached(t, err)
	require.Contains(t, status.Convert(err).Message(), fmt.Sprintf("project %q", project))
	require.Equal(t, map[string]string{"project": project}, errorInfo(t, err).GetMetadata())
}

// A reservation naming a project is refused over the project's limit exactly like a
// require_funds debit; like the organization's limit, a hold is not counted as spending (its
// capture is).
func TestReserveChecksTheProjectLimit(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "reserveprojects"
	admin := l.Client(t, ledgertest.Token(t, adminClaims(org)))
	credit(t, ops, org, 100*unit, "seed")
	setProjectLimit(t, admin, org, "alpha", 10*unit)
	_, err := svc.Debit(t.Context(), projectDebit(org, "alpha", "spent", 6*unit, true))
	require.NoError(t, err)

	for _, tc := range []struct {
		name, key string
		project   string
		amount    money.Nanos
		refused   bool
	}{
		{"within the project's limit", "within", "alpha", 4 * unit, false},
		{"within it again: holds are not spending", "again", "alpha", 4 * unit, false},
		{"past the project's limit", "past", "alpha", 5 * unit, true},
		{"another project", "beta", "beta", 50 * unit, false},
		{"no project", "none", "", 20 * unit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := svc.Reserve(t.Context(), projectReserve(org, tc.project, tc.key, tc.amount))
			if tc.refused {
				requireProjectLimitReached(t, err, tc.project)
				_, debitErr := svc.Debit(t.Context(), projectDebit(org, tc.project, "debit-"+tc.key, tc.amount, true))
				require.Equal(t, status.Convert(debitErr).Proto(), status.Convert(err).Proto(), "refused like a require_funds debit")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.amount, nanos(t, r.GetHold().GetAmount()))
		})
	}
	require.Equal(t, 6*unit, projectSpend(t, admin, org, "alpha"), "holds are not counted")

	// The project is part of the request: the same key with another project is another request.
	_, err = svc.Reserve(t.Context(), projectReserve(org, "beta", "within", 4*unit))
	requireCode(t, err, codes.AlreadyExists)
	// A capture of the project counts; past the limit it is still recorded, like usage.
	r, err := svc.Reserve(t.Context(), projectReserve(org, "alpha", "to-capture", 4*unit))
	require.NoError(t, err)
	_, err = svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: r.GetHold().GetId(), Amount: usd(5 * unit), IdempotencyKey: "cap",
		Metadata: map[string]string{"project": "alpha"}})
	require.NoError(t, err)
	require.Equal(t, 11*unit, projectSpend(t, admin, org, "alpha"))
	_, err = svc.Reserve(t.Context(), projectReserve(org, "alpha", "after-capture", 1))
	requireProjectLimitReached(t, err, "alpha")
}

// TestReserveProjectLimitUnderConcurrentDebits runs 30 require_funds debits and 30 reservations
// of one project at once against its $10 limit: exactly 10 debits pass, and every reservation
// accepted was decided before the limit was reached (its hold_placed event precedes the 10th
// debit's in the outbox's commit order), so none read a stale charge count.
func TestReserveProjectLimitUnderConcurrentDebits(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "reserverace"
	admin := l.Client(t, ledgertest.Token(t, adminClaims(org)))
	credit(t, ops, org, 1000*unit, "seed")
	setProjectLimit(t, admin, org, "alpha", 10*unit)

	var wg sync.WaitGroup
	debitErrs, reserveErrs := make([]error, 30), make([]error, 30)
	for i := range 30 {
		wg.Go(func() {
			_, debitErrs[i] = svc.Debit(t.Context(), projectDebit(org, "alpha", fmt.Sprintf("d-%d", i), unit, true))
		})
		wg.Go(func() {
			_, reserveErrs[i] = svc.Reserve(t.Context(), projectReserve(org, "alpha", fmt.Sprintf("r-%d", i), unit))
		})
	}
	wg.Wait()
	count := func(errs []error) int {
		n := 0
		for _, err := range errs {
			if err == nil {
				n++
				continue
			}
			requireProjectLimitReached(t, err, "alpha")
		}
		return n
	}
	require.Equal(t, 10, count(debitErrs), "the project's limit is never passed by require_funds debits")
	holds := count(reserveErrs)
	t.Logf("%d of 30 reservations accepted", holds)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, l.DatabaseURL)
	require.NoError(t, err)
	defer pool.Close()
	rows, err := pool.Query(ctx, `SELECT kind FROM ledger.events WHERE org_id = $1 AND kind IN ('debit', 'hold_placed') ORDER BY seq`, org)
	require.NoError(t, err)
	kinds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	debits, placed := 0, 0
	for _, kind := range kinds {
		switch kind {
		case "debit":
			debits++
		case "hold_placed":
			require.Less(t, debits, 10, "a reservation accepted once the limit was reached")
			placed++
		}
	}
	require.Equal(t, 10, debits)
	require.Equal(t, holds, placed)
	_, err = svc.Reserve(t.Context(), projectReserve(org, "alpha", "after", unit))
	requireProjectLimitReached(t, err, "alpha")
	require.Equal(t, 10*unit, projectSpend(t, admin, org, "alpha"))
}

// A streamed require_funds debit over its project's limit is refused like the unary Debit:
// the same code, message, reason and ErrorInfo metadata (the project).
func TestDebitStreamRefusedOverTheProjectLimit(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "streamprojects"
	admin := l.Client(t, ledgertest.Token(t, adminClaims(org)))
	credit(t, ops, org, 100*unit, "seed")
	setProjectLimit(t, admin, org, "alpha", 5*unit)

	acks, err := streamDebits(t, svc, []*ledgerv1.StreamedDebit{
		streamed(1, projectDebit(org, "alpha", "s-1", 3*unit, true)),
		streamed(2, projectDebit(org, "alpha", "s-2", 3*unit, true)),  // over the limit
		streamed(3, projectDebit(org, "beta", "s-3", 3*unit, true)),   // another project
		streamed(4, projectDebit(org, "alpha", "s-4", 3*unit, false)), // usage that happened
	}, 1)
	require.NoError(t, err)
	require.NotNil(t, acks[1][0].GetDebit())
	requireAckCode(t, acks[2][0], codes.FailedPrecondition, "SPEND_LIMIT_REACHED")
	require.Equal(t, map[string]string{"project": "alpha"}, acks[2][0].GetError().GetMetadata())
	require.NotNil(t, acks[3][0].GetDebit())
	require.NotNil(t, acks[4][0].GetDebit())

	_, unaryErr := svc.Debit(t.Context(), projectDebit(org, "alpha", "s-2", 3*unit, true))
	requireProjectLimitReached(t, unaryErr, "alpha")
	st := status.Convert(unaryErr)
	require.Equal(t, int32(st.Code()), acks[2][0].GetError().GetCode()) //nolint:gosec // small codes
	require.Contains(t, st.Message(), `project "alpha"`)
	require.Equal(t, errorInfo(t, unaryErr).GetMetadata(), acks[2][0].GetError().GetMetadata())
	require.Equal(t, 6*unit, projectSpend(t, admin, org, "alpha"))
}
