package ledger

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

func TestAlertThresholdRoundsUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		limit money.Nanos
		pct   int32
		want  money.Nanos
		ok    bool
	}{
		{100, 80, 80, true},
		{3, 50, 2, true}, // 1.5 rounds up: the alert never fires below the percentage
		{1, 1, 1, true},
		{math.MaxInt64, 100, math.MaxInt64, true},
		{math.MaxInt64, 99, 9131138316486228049, true},
		{100, 0, 0, false},
		{0, 50, 0, false},
	} {
		got, ok := SpendLimit{Amount: tc.limit, AlertPercent: tc.pct}.alertThreshold()
		require.Equal(t, tc.ok, ok, "%d at %d%%", tc.limit, tc.pct)
		require.Equal(t, tc.want, got, "%d at %d%%", tc.limit, tc.pct)
	}
}

func TestSpendMonthAndLimit(t *testing.T) {
	t.Parallel()
	jan := time.Date(2027, time.January, 31, 23, 59, 59, 0, time.UTC)
	feb := jan.Add(time.Second)
	a := Account{OrgID: "o", Currency: "USD", Limit: SpendLimit{Amount: 10}}
	require.NoError(t, a.CheckSpend(jan, 10))
	require.ErrorIs(t, a.CheckSpend(jan, 11), ErrSpendLimitReached)
	a.addSpend(jan, 10)
	require.Equal(t, money.Nanos(10), a.MonthSpend(jan))
	require.ErrorIs(t, a.CheckSpend(jan, 0), ErrSpendLimitReached, "reached: even a zero amount is refused")
	require.Zero(t, a.MonthSpend(feb), "a new UTC month starts at zero")
	require.NoError(t, a.CheckSpend(feb, 10))
	a.Spend.Alerted = true
	a.addSpend(feb, 3)
	require.Equal(t, Spend{Month: MonthOf(feb), Amount: 3}, a.Spend, "the new month re-arms the alert")
	a.addSpend(feb, math.MaxInt64)
	require.Equal(t, money.Nanos(math.MaxInt64), a.Spend.Amount, "saturates")
	none := Account{}
	require.NoError(t, none.CheckSpend(jan, math.MaxInt64), "no limit")
}

func TestSetSpendLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, time.March, 3, 0, 0, 0, 0, time.UTC)
	a := Account{OrgID: "o", Currency: "USD", Version: 4, Spend: Spend{Month: MonthOf(now), Amount: 80}}
	alert, changed := SetSpendLimit(&a, SpendLimit{Amount: 200, AlertPercent: 50}, now)
	require.True(t, changed)
	require.Nil(t, alert, "80 of 200 is below 50%")
	require.Equal(t, int64(5), a.Version)
	alert, changed = SetSpendLimit(&a, SpendLimit{Amount: 200, AlertPercent: 50}, now)
	require.False(t, changed)
	require.Nil(t, alert)
	require.Equal(t, int64(5), a.Version, "nothing changes, nothing is written")
	alert, changed = SetSpendLimit(&a, SpendLimit{Amount: 100, AlertPercent: 80}, now)
	require.True(t, changed)
	require.NotNil(t, alert, "a limit already passed alerts at once")
	require.Equal(t, EventSpendAlert, alert.Kind)
	require.Equal(t, money.Nanos(80), alert.Amount)
	require.Equal(t, money.Nanos(100), alert.SpendLimit)
	require.True(t, a.Spend.Alerted)
	for _, bad := range []SpendLimit{{Amount: -1}, {Amount: 1, AlertPercent: 101}, {Amount: 1, AlertPercent: -1}, {AlertPercent: 5}} {
		require.True(t, errors.Is(ValidateSpendLimit(bad), ErrInvalid), "%+v", bad)
	}
	require.NoError(t, ValidateSpendLimit(SpendLimit{}))
}
