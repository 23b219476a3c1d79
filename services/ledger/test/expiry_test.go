package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func TestValidityRenewalAndExpiryWithTwoReplicas(t *testing.T) {
	t.Parallel()
	validity := config.Period{Duration: 3 * time.Second}
	db, rds := testenv.PostgresURL(t), testenv.RedisURL(t)
	opts := ledgertest.Options{DatabaseURL: db, RedisURL: rds, CreditValidity: validity, SweepInterval: 20 * time.Millisecond}
	a := ledgertest.Start(t, opts)
	b := ledgertest.Start(t, opts)
	opsA := a.Client(t, ledgertest.OpsToken(t))
	opsB := b.Client(t, ledgertest.OpsToken(t))
	svc := a.Client(t, ledgertest.ServiceToken(t, "model-backend"))

	first := credit(t, opsA, "exp", 5*unit, "topup-1")
	_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "exp", Amount: usd(unit), IdempotencyKey: "d1"})
	require.NoError(t, err)
	// A second later (the first credits' validity started at first.ExpiresAt - validity).
	firstFrom := first.GetExpiresAt().AsTime().Add(-validity.Duration)
	require.Eventually(t, func() bool { return time.Now().After(firstFrom.Add(time.Second)) }, 5*time.Second, 10*time.Millisecond)
	// A credit while still valid renews the whole balance: 4 remaining + 3 new, valid from now.
	second := credit(t, opsB, "exp", 3*unit, "topup-2")
	require.True(t, second.GetExpiresAt().AsTime().After(first.GetExpiresAt().AsTime()))
	require.Equal(t, 7*unit, nanos(t, second.GetBalance()))
	// Past the time the first credits would have expired, nothing expired: the renewal covered it.
	firstGone := first.GetExpiresAt().AsTime().Add(300 * time.Millisecond)
	require.Eventually(t, func() bool { return time.Now().After(firstGone) }, 10*time.Second, 10*time.Millisecond)
	if time.Now().Before(second.GetExpiresAt().AsTime()) {
		require.Equal(t, 7*unit, nanos(t, balance(t, opsA, "exp").GetBalance()))
	}

	// Then everything expires once, although both replicas sweep every 20ms.
	require.Eventually(t, func() bool { return nanos(t, balance(t, opsA, "exp").GetBalance()) == 0 }, 10*time.Second, 20*time.Millisecond)
	// Let both sweepers run again. Proof that sweeps ran after "exp" expired: credits of another
	// org, given only after that, expire too. (No metric tells the replicas' sweeps apart, so the
	// 300ms both replicas had to sweep, at 20ms intervals, is kept as part of the condition.)
	zeroAt := time.Now()
	credit(t, opsB, "exp-probe", unit, "probe-topup")
	require.Eventually(t, func() bool {
		return time.Since(zeroAt) >= 300*time.Millisecond && countKind(t, opsA, "exp-probe", ledgerv1.TransactionKind_TRANSACTION_KIND_EXPIRY) == 1
	}, 15*time.Second, 20*time.Millisecond, "the sweepers run again")
	list, err := opsB.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "exp", PageSize: 50})
	require.NoError(t, err)
	var expiries int
	for _, tx := range list.GetTransactions() {
		if tx.GetKind() == ledgerv1.TransactionKind_TRANSACTION_KIND_EXPIRY {
			expiries++
			require.Equal(t, -7*unit, nanos(t, tx.GetAmount()))
		}
	}
	require.Equal(t, 1, expiries, "credits expire exactly once")
	require.Nil(t, balance(t, opsA, "exp").GetExpiresAt())

	// A credit after expiry starts a fresh period with only the new credits.
	before := time.Now()
	fresh := credit(t, opsA, "exp", 2*unit, "topup-3")
	require.Equal(t, 2*unit, nanos(t, fresh.GetBalance()))
	require.WithinDuration(t, before.Add(3*time.Second), fresh.GetExpiresAt().AsTime(), time.Second)
	requireBalanced(t, db)
}

// countKind counts org's transactions of the given kind (first page of 50).
func countKind(t *testing.T, c ledgerv1.LedgerServiceClient, org string, kind ledgerv1.TransactionKind) int {
	t.Helper()
	list, err := c.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 50})
	require.NoError(t, err)
	n := 0
	for _, tx := range list.GetTransactions() {
		if tx.GetKind() == kind {
			n++
		}
	}
	return n
}
