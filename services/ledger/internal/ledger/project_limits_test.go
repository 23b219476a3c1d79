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
