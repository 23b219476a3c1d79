package test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

func usd(n money.Nanos) *moneypb.Money { return money.ToProto(n, "USD") }

func nanos(t testing.TB, m *moneypb.Money) money.Nanos {
	t.Helper()
	v, err := money.FromProto(m)
	require.NoError(t, err)
	return v.Nanos
}

func requireCode(t testing.TB, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code.String(), status.Code(err).String(), "error: %v", err)
}

func balance(t testing.TB, c ledgerv1.LedgerServiceClient, org string) *ledgerv1.GetBalanceResponse {
	t.Helper()
	b, err := c.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: org})
	require.NoError(t, err)
	return b
}

func credit(t testing.TB, c ledgerv1.LedgerServiceClient, org string, n money.Nanos, key string) *ledgerv1.CreditResponse {
	t.Helper()
	r, err := c.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: usd(n), IdempotencyKey: key, Reason: "test top-up"})
	require.NoError(t, err)
	return r
}

// requireBalanced checks the double-entry invariants directly in PostgreSQL: every account's stored
// balance equals the sum of its postings and all postings sum to zero.
func requireBalanced(t testing.TB, dbURL string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var bad int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT a.id FROM ledger.accounts a LEFT JOIN ledger.postings p ON p.account_id = a.id
GROUP BY a.id HAVING a.balance <> coalesce(sum(p.amount), 0)) x`).Scan(&bad))
	require.Zero(t, bad, "accounts whose balance differs from the sum of their postings")
	var total, unbalancedTx int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::bigint FROM ledger.postings`).Scan(&total))
	require.Zero(t, total, "all postings must sum to zero")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT coalesce(entry_id, transaction_id) FROM ledger.postings GROUP BY coalesce(entry_id, transaction_id) HAVING sum(amount) <> 0) x`).Scan(&unbalancedTx))
	require.Zero(t, unbalancedTx)
	var lost int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM ledger.postings p WHERE p.entry_id IS NOT NULL
AND NOT EXISTS (SELECT 1 FROM ledger.postings q WHERE q.transaction_id = p.entry_id)`).Scan(&lost))
	require.Zero(t, lost, "postings whose journal entry has no platform posting")
	var orphan int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM ledger.transactions t WHERE NOT EXISTS (SELECT 1 FROM ledger.postings p WHERE p.transaction_id = t.id)`).Scan(&orphan))
	require.Zero(t, orphan, "transactions without postings")
}

func ledgerAccount(org string, version int64, bal money.Nanos) ledger.Account {
	return ledger.Account{OrgID: org, Currency: "USD", Version: version, Balance: bal}
}

func memberClaims(org string) auth.Claims {
	return auth.Claims{Subject: "member-of-" + org, OrgID: org, Email: "m@example.com", Roles: []auth.Role{auth.RoleMember}}
}
