package test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestDebitKeysLiveOnTheirTransactions: a debit's idempotency key is stored on its transaction
// row, not in idempotency_keys; the database refuses a second debit row with the same key; and
// keys stay unique per organization across operations (a credit's key refuses a debit and the
// other way round).
func TestDebitKeysLiveOnTheirTransactions(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "dk", 10*unit, "shared-credit")
	d, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "dk", Amount: usd(unit), IdempotencyKey: "shared-debit"})
	require.NoError(t, err)

	pool, err := pgxpool.New(t.Context(), l.DatabaseURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var keyRows, hashed int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM ledger.idempotency_keys WHERE org_id = 'dk' AND key = 'shared-debit'),
    (SELECT count(*) FROM ledger.transactions WHERE org_id = 'dk' AND idempotency_key = 'shared-debit' AND request_hash IS NOT NULL)`).Scan(&keyRows, &hashed))
	require.Zero(t, keyRows, "a debit's key has no idempotency_keys row")
	require.Equal(t, 1, hashed)
	var creditKeys int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM ledger.idempotency_keys WHERE org_id = 'dk' AND key = 'shared-credit'`).Scan(&creditKeys))
	require.Equal(t, 1, creditKeys, "other operations keep their idempotency_keys row")

	_, err = pool.Exec(t.Context(), `INSERT INTO ledger.transactions (id, org_id, kind, amount, balance_after, currency, idempotency_key, created_at, request_hash)
SELECT gen_random_uuid(), org_id, kind, amount, balance_after, currency, idempotency_key, created_at, request_hash FROM ledger.transactions WHERE id = $1::uuid`, d.GetTransactionId())
	require.ErrorContains(t, err, "transactions_debit_key", "the database refuses a second debit with the key")

	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "dk", Amount: usd(unit), IdempotencyKey: "shared-credit"})
	requireCode(t, err, codes.AlreadyExists)
	_, err = ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "dk", Amount: usd(unit), IdempotencyKey: "shared-debit", Reason: "test"})
	requireCode(t, err, codes.AlreadyExists)
	again, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "dk", Amount: usd(unit), IdempotencyKey: "shared-debit"})
	require.NoError(t, err)
	require.True(t, again.GetReplayed())
	require.Equal(t, d.GetTransactionId(), again.GetTransactionId())
	requireBalanced(t, l.DatabaseURL)
}
