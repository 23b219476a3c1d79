package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
)

func decideConfig(now time.Time) BatchConfig {
	n := 0
	return BatchConfig{
		Now:             now,
		Validity:        config.Period{Months: 3},
		PlatformAccount: func(kind, cur string) string { return PlatformAccountName(kind, cur, 0) },
		NewID:           func() string { n++; return fmt.Sprintf("id-%d", n) },
	}
}

// lockedState is the state a test batch finds under lock: account "acme" with 100 nanos and an
// active hold "h-acme" of 30 on it, and account "other" with 5.
func lockedState(now time.Time) *Locked {
	acme := &Account{ID: 1, OrgID: "acme", Currency: "USD", Balance: 100, Held: 30, ExpiresAt: now.Add(time.Hour)}
	other := &Account{ID: 2, OrgID: "other", Currency: "USD", Balance: 5, ExpiresAt: now.Add(time.Hour)}
	return &Locked{
		Accounts: map[string]*Account{"acme": acme, "other": other},
		Holds: map[string]*Hold{"h-acme": {
			ID: "h-acme", OrgID: "acme", Amount: 30, Currency: "USD", Status: HoldActive,
			ExpiresAt: now.Add(time.Minute), CreatedAt: now.Add(-time.Minute),
		}},
		Existing: map[IdemKey]Replay{},
	}
}

// TestDecide (T12): the pure step of a batch. A request naming a hold acts on the hold's
// organization whatever organization it names, an unknown hold is ErrHoldNotFound, and the
// requests are never rewritten.
func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		req         Request
		wantErr     error
		wantOrg     string      // the organization the result's account belongs to
		wantBalance money.Nanos // of wantOrg after the batch
		wantHeld    money.Nanos
		wantEmpty   bool
	}{
		{"capture acts on the hold's org", Request{Op: OpCapture, HoldID: "h-acme", Amount: 20, IdempotencyKey: "c1"}, nil, "acme", 80, 0, false},
		{"capture naming another org still acts on the hold's", Request{Op: OpCapture, OrgID: "other", HoldID: "h-acme", Amount: 20}, nil, "acme", 80, 0, false},
		{"release acts on the hold's org", Request{Op: OpRelease, HoldID: "h-acme"}, nil, "acme", 100, 0, false},
		{"unknown hold", Request{Op: OpCapture, OrgID: "acme", HoldID: "h-none", Amount: 1}, ErrHoldNotFound, "", 0, 0, true},
		{"release of an unknown hold", Request{Op: OpRelease, HoldID: "h-none"}, ErrHoldNotFound, "", 0, 0, true},
		{"debit of an org", Request{Op: OpDebit, OrgID: "other", Amount: 2, Currency: "USD", IdempotencyKey: "d1"}, nil, "other", 3, 0, false},
		{"reserve beyond the available", Request{Op: OpReserve, OrgID: "acme", Amount: 71, TTL: time.Minute}, ErrInsufficientFunds, "", 0, 0, true},
		{"reserve within it", Request{Op: OpReserve, OrgID: "acme", Amount: 70, TTL: time.Minute}, nil, "acme", 100, 100, false},
		{"reserve without an account", Request{Op: OpReserve, OrgID: "nobody", Amount: 1, TTL: time.Minute}, ErrInsufficientFunds, "", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := tt.req
			sent := req
			b, out := Decide(decideConfig(now), []*Request{&req}, lockedState(now))
			require.Len(t, out, 1)
			require.Equal(t, sent, req, "Decide never rewrites a request")
			require.Equal(t, tt.wantEmpty, b.Empty())
			if tt.wantErr != nil {
				require.ErrorIs(t, out[0].Err, tt.wantErr)
				return
			}
			require.NoError(t, out[0].Err)
			acct := out[0].Result.Account
			require.Equal(t, tt.wantOrg, acct.OrgID)
			require.Equal(t, tt.wantBalance, acct.Balance)
			require.Equal(t, tt.wantHeld, acct.Held)
			for _, tx := range b.Transactions {
				require.Equal(t, tt.wantOrg, tx.OrgID)
			}
			for _, k := range b.Keys {
				require.Equal(t, tt.wantOrg, k.OrgID, "an idempotency key is scoped to the organization acted on")
			}
		})
	}
}

// TestDecideReplaysAKeyOfTheHoldsOrg: a capture retried with its key, the org unnamed, replays
// the capture stored under the hold's organization.
func TestDecideReplaysAKeyOfTheHoldsOrg(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	capture := Request{Op: OpCapture, HoldID: "h-acme", Amount: 20, IdempotencyKey: "c1"}
	resolved := capture
	resolved.OrgID = "acme"
	l := lockedState(now)
	l.Existing[IdemKey{OrgID: "acme", Key: "c1"}] = Replay{
		Record:      IdempotencyRecord{OrgID: "acme", Key: "c1", Operation: OpCapture, RequestHash: RequestHash(&resolved), TransactionID: "tx-1"},
		Transaction: &Transaction{ID: "tx-1", OrgID: "acme"},
	}
	b, out := Decide(decideConfig(now), []*Request{&capture}, l)
	require.NoError(t, out[0].Err)
	require.True(t, out[0].Result.Replayed)
	require.Equal(t, "tx-1", out[0].Result.Transaction.ID)
	require.True(t, b.Empty(), "a replay writes nothing")
}

func TestLockSetOf(t *testing.T) {
	t.Parallel()
	reqs := []*Request{
		{Op: OpReserve, OrgID: "a", Amount: 1},
		{Op: OpCredit, OrgID: "a", Amount: 1, Currency: "EUR", IdempotencyKey: "k1"},
		{Op: OpDebit, OrgID: "a", Amount: 1, Currency: "USD"},
		{Op: OpCapture, OrgID: "b", HoldID: "h1", Amount: 1, IdempotencyKey: "k2"},
		{Op: OpExpireCredits, OrgID: "c"},
		{Op: OpRelease, HoldID: "h2"},
	}
	require.Equal(t, LockSet{
		Orgs:    []string{"a", "c"},
		Open:    []NewAccount{{OrgID: "a", Currency: "EUR"}},
		HoldIDs: []string{"h1", "h2"},
		Keys:    []KeyRef{{OrgID: "a", Key: "k1"}, {HoldID: "h1", Key: "k2"}},
	}, LockSetOf(reqs))
}
