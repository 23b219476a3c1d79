package ledger

import (
	"fmt"
	"math"
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

// TestBatchRefusesOverflowAlone applies batches in which one request would take an organization's
// balance, held or available amount beyond int64: that request alone is refused with ErrOverflow
// and leaves nothing behind (no transaction, key, event, hold change or validity renewal), and
// the requests around it in the same batch are applied.
func TestBatchRefusesOverflowAlone(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range overflowCases(now) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, now)
		})
	}
}

// overflowStep is one request of an overflowCase and the error it gets.
type overflowStep struct {
	req     Request
	wantErr error
}

// overflowCase is a batch of TestBatchRefusesOverflowAlone on organization "a" (USD).
type overflowCase struct {
	name  string
	acct  Account
	holds []*Hold
	steps []overflowStep
	check func(t *testing.T, b *Batch, acct *Account)
}

func overflowCases(now time.Time) []overflowCase {
	return append(balanceOverflowCases(now), holdOverflowCases(now)...)
}

const maxNanos, minNanos = money.Nanos(math.MaxInt64), money.Nanos(math.MinInt64)

// balanceOverflowCases take the balance beyond int64.
func balanceOverflowCases(now time.Time) []overflowCase {
	valid := now.Add(time.Hour)
	const maxI, minI = maxNanos, minNanos
	type step = overflowStep
	return []overflowCase{
		{
			name: "credit past int64 max keeps the validity",
			acct: Account{Balance: maxI - 10, ExpiresAt: valid},
			steps: []step{
				{Request{Op: OpCredit, Amount: 5, IdempotencyKey: "c1"}, nil},
				{Request{Op: OpCredit, Amount: 6, IdempotencyKey: "c2"}, ErrOverflow},
				{Request{Op: OpDebit, Amount: 1, IdempotencyKey: "d1"}, nil},
			},
			check: func(t *testing.T, _ *Batch, acct *Account) {
				require.Equal(t, maxI-6, acct.Balance)
				require.Equal(t, now.AddDate(0, 3, 0), acct.ExpiresAt, "renewed by c1 only")
			},
		},
		{
			name: "refused credit alone does not renew",
			acct: Account{Balance: maxI, ExpiresAt: valid},
			steps: []step{
				{Request{Op: OpCredit, Amount: 1, IdempotencyKey: "c1"}, ErrOverflow},
				{Request{Op: OpDebit, Amount: 1, IdempotencyKey: "d1"}, nil},
			},
			check: func(t *testing.T, _ *Batch, acct *Account) {
				require.Equal(t, valid, acct.ExpiresAt)
			},
		},
		{
			name: "debit past int64 min",
			acct: Account{Balance: minI + 10},
			steps: []step{
				{Request{Op: OpDebit, Amount: 11, IdempotencyKey: "d1"}, ErrOverflow},
				{Request{Op: OpDebit, Amount: 10, IdempotencyKey: "d2"}, nil},
				{Request{Op: OpDebit, Amount: 1, IdempotencyKey: "d3"}, ErrOverflow},
			},
			check: func(t *testing.T, _ *Batch, acct *Account) { require.Equal(t, minI, acct.Balance) },
		},
		{
			name: "adjustment of int64 min has no counter-entry",
			acct: Account{Balance: 0},
			steps: []step{
				{Request{Op: OpAdjust, Amount: minI, Reason: "r", IdempotencyKey: "a1"}, ErrOverflow},
				{Request{Op: OpAdjust, Amount: minI + 1, Reason: "r", IdempotencyKey: "a2"}, nil},
			},
			check: func(t *testing.T, _ *Batch, acct *Account) { require.Equal(t, minI+1, acct.Balance) },
		},
	}
}

// holdOverflowCases take the held or available amount beyond int64, or capture past it.
func holdOverflowCases(now time.Time) []overflowCase {
	valid := now.Add(time.Hour)
	const maxI, minI = maxNanos, minNanos
	type step = overflowStep
	return []overflowCase{
		{
			name:  "debit whose available amount would pass int64 min",
			acct:  Account{Balance: -8_900_000_000_000_000_000, Held: 300_000_000_000_000_000},
			holds: []*Hold{{ID: "h1", Amount: 300_000_000_000_000_000, Status: HoldActive, ExpiresAt: valid}},
			steps: []step{
				{Request{Op: OpDebit, Amount: 100_000_000_000_000_000, IdempotencyKey: "d1"}, ErrOverflow},
				{Request{Op: OpDebit, Amount: 1_000_000, IdempotencyKey: "d2"}, nil},
			},
			check: func(t *testing.T, _ *Batch, acct *Account) {
				require.Equal(t, money.Nanos(-8_900_000_000_001_000_000), acct.Balance)
				require.Equal(t, money.Nanos(300_000_000_000_000_000), acct.Held)
			},
		},
		{
			name:  "capture past int64 min leaves the hold active",
			acct:  Account{Balance: minI + 1000, Held: 100},
			holds: []*Hold{{ID: "h1", Amount: 100, Status: HoldActive, ExpiresAt: valid}},
			steps: []step{
				{Request{Op: OpCapture, HoldID: "h1", Amount: 1001, IdempotencyKey: "cap1"}, ErrOverflow},
				{Request{Op: OpCapture, HoldID: "h1", Amount: 1000, IdempotencyKey: "cap2"}, nil},
			},
			check: func(t *testing.T, b *Batch, acct *Account) {
				require.Equal(t, minI, acct.Balance)
				require.Zero(t, acct.Held)
				require.Equal(t, HoldCaptured, b.ChangedHolds["h1"].Status)
				require.Equal(t, money.Nanos(1000), b.ChangedHolds["h1"].Captured)
			},
		},
		{
			name:  "refused capture alone changes no hold",
			acct:  Account{Balance: minI + 1000, Held: 100},
			holds: []*Hold{{ID: "h1", Amount: 100, Status: HoldActive, ExpiresAt: valid}},
			steps: []step{
				{Request{Op: OpCapture, HoldID: "h1", Amount: maxI, IdempotencyKey: "cap1"}, ErrOverflow},
				{Request{Op: OpReserve, Amount: 1, TTL: time.Minute, IdempotencyKey: "r1"}, ErrInsufficientFunds},
			},
			check: func(t *testing.T, b *Batch, acct *Account) {
				require.Empty(t, b.ChangedHolds)
				require.Equal(t, money.Nanos(100), acct.Held)
			},
		},
	}
}

// run applies the case's steps and checks that refused requests left nothing behind.
func (tt overflowCase) run(t *testing.T, now time.Time) {
	acct := tt.acct
	acct.OrgID, acct.Currency = "a", "USD"
	initial := acct
	b := newTestBatch(now, &acct)
	for _, h := range tt.holds {
		h.OrgID, h.Currency = "a", "USD"
		b.holds[h.ID] = h
	}
	accepted := map[string]bool{}
	for i, s := range tt.steps {
		req := s.req
		req.OrgID = "a"
		_, err := b.Apply(&req)
		if s.wantErr != nil {
			require.ErrorIs(t, err, s.wantErr, "step %d", i)
			continue
		}
		require.NoError(t, err, "step %d", i)
		accepted[req.IdempotencyKey] = true
	}
	var delta money.Nanos
	for _, tx := range b.Transactions {
		require.True(t, accepted[tx.IdempotencyKey], "transaction of refused key %q", tx.IdempotencyKey)
		require.Len(t, tx.Postings, 2)
		require.Equal(t, tx.Amount, tx.Postings[0].Amount)
		require.Equal(t, -tx.Amount, tx.Postings[1].Amount, "balanced, without wrapping")
		delta += tx.Amount
	}
	require.Equal(t, initial.Balance+delta, acct.Balance, "balance = initial + accepted transactions")
	require.Len(t, b.Keys, len(accepted), "only accepted requests leave a key")
	for _, k := range b.Keys {
		require.True(t, accepted[k.Key])
	}
	require.Len(t, b.Events, len(accepted), "one event per accepted request")
	tt.check(t, b, &acct)
}
