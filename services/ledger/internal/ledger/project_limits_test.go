package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

func TestProjectLimitCheck(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)
	thisMonth, lastMonth := ledger.MonthOf(now), ledger.MonthOf(now.AddDate(0, -1, 0))
	tests := []struct {
		name    string
		spent   money.Nanos
		month   time.Time
		amount  money.Nanos
		refused bool
	}{
		{"within", 4, thisMonth, 5, false},
		{"exactly the rest", 4, thisMonth, 6, false},
		{"beyond the rest", 4, thisMonth, 7, true},
		{"reached", 10, thisMonth, 0, true},
		{"last month's spending counts as zero", 10, lastMonth, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := ledger.ProjectLimit{Project: "alpha", Amount: 10, Spend: ledger.Spend{Month: tt.month, Amount: tt.spent}}
			err := p.Check(now, tt.amount, "USD")
			if !tt.refused {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ledger.ErrSpendLimitReached)
			var pe *ledger.ProjectLimitError
			require.True(t, errors.As(err, &pe))
			require.Equal(t, "alpha", pe.Project)
		})
	}
	acct := ledger.Account{Currency: "USD", Projects: map[string]*ledger.ProjectLimit{"alpha": {Project: "alpha", Amount: 1, Spend: ledger.Spend{Month: thisMonth, Amount: 1}}}}
	require.NoError(t, acct.CheckProjectSpend(now, map[string]string{"project": "beta"}, 5), "a project without a limit passes")
	require.NoError(t, acct.CheckProjectSpend(now, nil, 5), "an untagged charge passes")
	require.ErrorIs(t, acct.CheckProjectSpend(now, map[string]string{"project": "alpha"}, 1), ledger.ErrSpendLimitReached)
}

// A reservation naming a project is decided like a require_funds debit of it, and, like the
// organization's limit, its hold is not counted as the project's spending.
func TestReserveChecksProjectLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		project string
		amount  money.Nanos
		refused bool
	}{
		{"within", "alpha", 4, false},
		{"exactly the rest", "alpha", 6, false},
		{"beyond the rest", "alpha", 7, true},
		{"another project", "beta", 50, false},
		{"no project", "", 50, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			alpha := &ledger.ProjectLimit{Project: "alpha", Amount: 10, Spend: ledger.Spend{Month: ledger.MonthOf(now), Amount: 4}}
			acct := &ledger.Account{ID: 1, OrgID: "o", Currency: "USD", Balance: 100, Projects: map[string]*ledger.ProjectLimit{"alpha": alpha}, ProjectLimitCount: 1}
			b := ledger.NewBatch(ledger.BatchConfig{Now: now, PlatformAccount: func(kind, cur string) string { return "platform:" + kind + ":" + cur + ":00" },
				NewID: func() string { return "h" }, Accounts: map[string]*ledger.Account{"o": acct}, Holds: map[string]*ledger.Hold{}})
			req := &ledger.Request{Op: ledger.OpReserve, OrgID: "o", Amount: tt.amount, TTL: time.Minute, IdempotencyKey: "k", Actor: "t"}
			if tt.project != "" {
				req.Metadata = map[string]string{ledger.MetaProject: tt.project}
			}
			_, err := b.Apply(req)
			if tt.refused {
				var pe *ledger.ProjectLimitError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, "alpha", pe.Project)
				require.Empty(t, b.NewHolds)
				require.Zero(t, acct.Held)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.amount, acct.Held)
			require.Equal(t, money.Nanos(4), alpha.Spend.Amount, "the hold is not counted")
			require.False(t, alpha.Changed)
		})
	}
}
