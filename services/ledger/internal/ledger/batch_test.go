package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
)

func newTestBatch(now time.Time, accts ...*Account) *Batch {
	m := map[string]*Account{}
	for _, a := range accts {
		m[a.OrgID] = a
	}
	n := 0
	return NewBatch(BatchConfig{
		Now:             now,
		Validity:        config.Period{Months: 3},
		PlatformAccount: func(kind, cur string) string { return "platform:" + kind + ":" + cur + ":00" },
		NewID:           func() string { n++; return fmt.Sprintf("id-%d", n) },
		Accounts:        m,
		Holds:           map[string]*Hold{},
		Existing:        map[IdemKey]Replay{},
	})
}

func TestBatchRenewsAndExpires(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		acct        Account
		credit      money.Nanos
		wantBalance money.Nanos
		wantExpired money.Nanos
		wantExpires time.Time
	}{
		{"first credit starts a period", Account{OrgID: "a", Currency: "USD"}, 10, 10, 0, time.Date(2027, 3, 2, 12, 0, 0, 0, time.UTC)},
		{"credit while valid renews the whole balance", Account{OrgID: "a", Currency: "USD", Balance: 4, ExpiresAt: now.Add(time.Hour)}, 10, 14, 0, time.Date(2027, 3, 2, 12, 0, 0, 0, time.UTC)},
		{"credit after expiry expires the rest first", Account{OrgID: "a", Currency: "USD", Balance: 4, ExpiresAt: now.Add(-time.Hour)}, 10, 10, 4, time.Date(2027, 3, 2, 12, 0, 0, 0, time.UTC)},
		{"negative balance has nothing to expire", Account{OrgID: "a", Currency: "USD", Balance: -4, ExpiresAt: now.Add(-time.Hour)}, 10, 6, 0, time.Date(2027, 3, 2, 12, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			acct := tt.acct
			b := newTestBatch(now, &acct)
			res, err := b.Apply(&Request{Op: OpCredit, OrgID: "a", Amount: tt.credit, IdempotencyKey: "k"})
			require.NoError(t, err)
			require.Equal(t, tt.wantBalance, res.Account.Balance)
			require.Equal(t, tt.wantExpires, res.Account.ExpiresAt)
			var expired money.Nanos
			for _, tx := range b.Transactions {
				var sum money.Nanos
				for _, p := range tx.Postings {
					sum += p.Amount
				}
				require.Zero(t, sum, "postings of %s balance", tx.Kind)
				if tx.Kind == TxExpiry {
					expired -= tx.Amount
				}
			}
			require.Equal(t, tt.wantExpired, expired)
		})
	}
}

func TestBatchIdempotencyWithinABatch(t *testing.T) {
	t.Parallel()
	acct := &Account{OrgID: "a", Currency: "USD", Balance: 100}
	b := newTestBatch(time.Now(), acct)
	r1, err := b.Apply(&Request{Op: OpDebit, OrgID: "a", Amount: 5, IdempotencyKey: "k"})
	require.NoError(t, err)
	r2, err := b.Apply(&Request{Op: OpDebit, OrgID: "a", Amount: 5, IdempotencyKey: "k"})
	require.NoError(t, err)
	require.True(t, r2.Replayed)
	require.Equal(t, r1.Transaction.ID, r2.Transaction.ID)
	_, err = b.Apply(&Request{Op: OpDebit, OrgID: "a", Amount: 6, IdempotencyKey: "k"})
	require.ErrorIs(t, err, ErrIdempotencyConflict)
	require.Equal(t, money.Nanos(95), acct.Balance)
	require.Len(t, b.Keys, 1)
}

func TestBatchRequireFundsCountsHolds(t *testing.T) {
	t.Parallel()
	acct := &Account{OrgID: "a", Currency: "USD", Balance: 100, Held: 60}
	b := newTestBatch(time.Now(), acct)
	_, err := b.Apply(&Request{Op: OpDebit, OrgID: "a", Amount: 41, IdempotencyKey: "k", RequireFunds: true})
	require.ErrorIs(t, err, ErrInsufficientFunds)
	_, err = b.Apply(&Request{Op: OpDebit, OrgID: "a", Amount: 40, IdempotencyKey: "k2", RequireFunds: true})
	require.NoError(t, err)
	require.Len(t, b.Keys, 1, "a refused request leaves no idempotency key behind")
}
