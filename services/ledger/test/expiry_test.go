package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/clock"
	"github.com/tallyhq/tally/pkg/config"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestValidityRenewalAndExpiryWithTwoReplicas runs two replicas on one hand-set clock: each
// step of the validity happens when the test moves the clock, so every assertion runs.
func TestValidityRenewalAndExpiryWithTwoReplicas(t *testing.T) {
	t.Parallel()
	validity := config.Period{Duration: time.Hour}
	clk := clock.NewManual(time.Now().UTC().Truncate(time.Second))
	db, rds := testenv.PostgresURL(t), testenv.RedisURL(t)
	opts := ledgertest.Options{DatabaseURL: db, RedisURL: rds, CreditValidity: validity, SweepInterval: 20 * time.Millisecond, Now: clk.Now}
	a := ledgertest.Start(t, opts)
	b := ledgertest.Start(t, opts)
	opsA := a.Client(t, ledgertest.OpsToken(t))
	opsB := b.Client(t, ledgertest.OpsToken(t))
	svc := a.Client(t, ledgertest.ServiceToken(t, "model-backend"))

	first := credit(t, opsA, "exp", 5*unit, "topup-1")
	require.Equal(t, clk.Now().Add(time.Hour), first.GetExpiresAt().AsTime())
	// The probe's credits expire with the first ones: its expiry proves a sweep ran past them.
	credit(t, opsA, "exp-probe-1", unit, "probe-topup-1")
	_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "exp", Amount: usd(unit), IdempotencyKey: "d1"})
	require.NoError(t, err)

	// A credit while still valid renews the whole balance: 4 remaining + 3 new, valid from now.
	clk.Advance(10 * time.Minute)
	second := credit(t, opsB, "exp", 3*unit, "topup-2")
	require.Equal(t, clk.Now().Add(time.Hour), second.GetExpiresAt().AsTime())
	require.Equal(t, 7*unit, nanos(t, second.GetBalance()))

	// Past the time the first credits would have expired, nothing expired: the renewal covered it.
	clk.Set(first.GetExpiresAt().AsTime().Add(time.Minute))
	require.Eventually(t, func() bool {
		return countKind(t, opsA, "exp-probe-1", ledgerv1.TransactionKind_TRANSACTION_KIND_EXPIRY) == 1
	}, 10*time.Second, 20*time.Millisecond, "a sweep runs past the first credits' validity")
	require.Equal(t, 7*unit, nanos(t, balance(t, opsA, "exp").GetBalance()))
	require.Zero(t, countKind(t, opsA, "exp", ledgerv1.TransactionKind_TRANSACTION_KIND_EXPIRY))

	// Then everything expires once, although both replicas sweep every 20ms.
	clk.Set(second.GetExpiresAt().AsTime().Add(time.Minute))
	require.Eventually(t, func() bool { return nanos(t, balance(t, opsA, "exp").GetBalance()) == 0 }, 10*time.Second, 20*time.Millisecond)
	// Let both sweepers run again. Proof that sweeps ran after "exp" expired: credits of another
	// org, given only after that, expire too. (No metric tells the replicas' sweeps apart, so the
	// 300ms both replicas had to sweep, at 20ms intervals, is kept as part of the condition.)
	zeroAt := time.Now()
	credit(t, opsB, "exp-probe-2", unit, "probe-topup-2")
	clk.Advance(validity.Duration + time.Minute)
	require.Eventually(t, func() bool {
		return time.Since(zeroAt) >= 300*time.Millisecond && countKind(t, opsA, "exp-probe-2", ledgerv1.TransactionKind_TRANSACTION_KIND_EXPIRY) == 1
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
	fresh := credit(t, opsA, "exp", 2*unit, "topup-3")
	require.Equal(t, 2*unit, nanos(t, fresh.GetBalance()))
	require.Equal(t, clk.Now().Add(time.Hour), fresh.GetExpiresAt().AsTime())
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
