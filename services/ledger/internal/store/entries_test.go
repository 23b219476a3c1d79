package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// TestBatchDebitsShareOnePlatformPosting checks the lean write: the debits of one batch post one
// organization posting each and one platform posting between them (their journal entry), which
// balances; a debit read back or replayed still shows its two postings summing to zero; a debit
// alone in its batch is its own entry.
func TestBatchDebitsShareOnePlatformPosting(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	_, err := apply(t.Context(), st, []*ledger.Request{
		req(ledger.OpCredit, "a", 100, "c-a"), req(ledger.OpCredit, "b", 100, "c-b"), req(ledger.OpCredit, "c", 100, "c-c"),
	})
	require.NoError(t, err)
	debits := []*ledger.Request{
		req(ledger.OpDebit, "a", 10, "d1"), req(ledger.OpDebit, "b", 20, "d2"), req(ledger.OpCredit, "c", 7, "c2"),
		req(ledger.OpDebit, "c", 30, "d3"), req(ledger.OpDebit, "a", 5, "d4"),
	}
	applied, err := apply(t.Context(), st, debits)
	require.NoError(t, err)
	for _, o := range applied.Outcomes {
		require.NoError(t, o.Err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var shared, entries int
	var platform int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT entry_id) FROM postings WHERE entry_id IS NOT NULL`).Scan(&shared, &entries))
	require.Equal(t, 4, shared, "one organization posting per debit")
	require.Equal(t, 1, entries, "one journal entry for the batch's debits")
	require.NoError(t, pool.QueryRow(ctx, `SELECT amount FROM postings WHERE transaction_id = (SELECT entry_id FROM postings WHERE entry_id IS NOT NULL LIMIT 1)`).Scan(&platform))
	require.Equal(t, int64(65), platform, "the entry's platform posting carries the debits' sum")

	for _, org := range []string{"a", "b", "c"} {
		txs, err := st.ListTransactions(ctx, org, 10, 0, "")
		require.NoError(t, err)
		for _, tx := range txs {
			requireTwoLegs(t, tx)
		}
	}
	// A replay answers the original transaction, both legs included; a lone debit posts both.
	replayed, err := apply(t.Context(), st, []*ledger.Request{req(ledger.OpDebit, "a", 10, "d1"), req(ledger.OpDebit, "b", 1, "d5")})
	require.NoError(t, err)
	require.True(t, replayed.Outcomes[0].Result.Replayed)
	requireTwoLegs(t, replayed.Outcomes[0].Result.Transaction)
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM postings p JOIN transactions t ON t.id = p.transaction_id
WHERE t.idempotency_key = 'd5' AND p.entry_id IS NULL`).Scan(&shared))
	require.Equal(t, 2, shared, "a debit alone on its platform account is its own entry")
	requireConsistent(t, pool)
}

func requireTwoLegs(t *testing.T, tx *ledger.Transaction) {
	t.Helper()
	require.Len(t, tx.Postings, 2, tx.IdempotencyKey)
	require.Equal(t, money.Nanos(0), tx.Postings[0].Amount+tx.Postings[1].Amount, tx.IdempotencyKey)
	org, platform := tx.Postings[0], tx.Postings[1]
	if org.Account != "org:"+tx.OrgID {
		org, platform = platform, org
	}
	require.Equal(t, "org:"+tx.OrgID, org.Account, tx.IdempotencyKey)
	require.Equal(t, tx.Amount, org.Amount, tx.IdempotencyKey)
	require.NotZero(t, platform.AccountID, tx.IdempotencyKey)
	if tx.Kind == ledger.TxDebit {
		require.Equal(t, "platform:revenue:USD:00", platform.Account, tx.IdempotencyKey)
	}
}
