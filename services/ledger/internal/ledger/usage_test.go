package ledger

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUsageOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		src   UsageSource
		want  UsageItem
		usage bool
	}{
		{"usage-priced debit", UsageSource{TxKind: TxDebit, PricingModel: "llama", MetaInstance: "a100"}, UsageItem{UsageModel, "llama"}, true},
		{"debit naming a model", UsageSource{TxKind: TxDebit, MetaModel: "gpt-x"}, UsageItem{UsageModel, "gpt-x"}, true},
		{"rental period", UsageSource{TxKind: TxDebit, MetaInstance: "a100"}, UsageItem{UsageInstance, "a100"}, true},
		{"capture naming a model", UsageSource{TxKind: TxCapture, MetaModel: "whisper"}, UsageItem{UsageModel, "whisper"}, true},
		{"debit without names", UsageSource{TxKind: TxDebit}, UsageItem{UsageOther, "other"}, true},
		{"capture without names", UsageSource{TxKind: TxCapture}, UsageItem{UsageOther, "other"}, true},
		{"credit", UsageSource{TxKind: TxCredit, MetaModel: "gpt-x"}, UsageItem{}, false},
		{"refund (adjustment)", UsageSource{TxKind: TxAdjustment}, UsageItem{}, false},
		{"expiry", UsageSource{TxKind: TxExpiry}, UsageItem{}, false},
		{"hold event", UsageSource{}, UsageItem{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := UsageOf(tc.src)
			require.Equal(t, tc.usage, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestAggregateUsage(t *testing.T) {
	t.Parallel()
	day1 := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	day2 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// The same instant written in another zone is still 30 November in UTC.
	day1Elsewhere := time.Date(2026, 12, 1, 8, 59, 59, 0, time.FixedZone("JST", 9*3600))
	src := []UsageSource{
		{Seq: 1, OrgID: "a", TxKind: TxDebit, Amount: -math.MaxInt64, Currency: "USD", CreatedAt: day1, MetaModel: "m"},
		{Seq: 2, OrgID: "a", TxKind: TxDebit, Amount: -math.MaxInt64, Currency: "USD", CreatedAt: day1Elsewhere, MetaModel: "m"},
		{Seq: 3, OrgID: "a", TxKind: TxCredit, Amount: 100, Currency: "USD", CreatedAt: day1},
		{Seq: 4, OrgID: "a", TxKind: TxCapture, Amount: -7, Currency: "USD", CreatedAt: day2, MetaInstance: "a100"},
		{Seq: 5, OrgID: "b", TxKind: TxDebit, Amount: -3, Currency: "USD", CreatedAt: day2},
		{Seq: 6, OrgID: "a", Currency: "USD", CreatedAt: day2}, // a hold placed
	}
	got := AggregateUsage(src)
	sum := new(big.Int).Mul(big.NewInt(math.MaxInt64), big.NewInt(2))
	require.Equal(t, []UsageDelta{
		{Key: UsageKey{"a", UTCDay(day1), UsageItem{UsageModel, "m"}, "USD"}, Amount: sum, Count: 2},
		{Key: UsageKey{"a", UTCDay(day2), UsageItem{UsageInstance, "a100"}, "USD"}, Amount: big.NewInt(7), Count: 1},
		{Key: UsageKey{"b", UTCDay(day2), UsageItem{UsageOther, "other"}, "USD"}, Amount: big.NewInt(3), Count: 1},
	}, got, "sums beyond int64 stay exact; days are UTC days")
}

func TestNewUsageWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 0, 30, 0, 0, time.FixedZone("PST", -8*3600)) // 1 March 08:30 UTC
	for _, tc := range []struct {
		days     int
		from, to string
		invalid  bool
	}{
		{0, "2026-01-31", "2026-03-01", false},
		{1, "2026-03-01", "2026-03-01", false},
		{30, "2026-01-31", "2026-03-01", false},
		{90, "2025-12-02", "2026-03-01", false},
		{-1, "", "", true},
		{91, "", "", true},
		{math.MaxInt32, "", "", true},
	} {
		w, err := NewUsageWindow(tc.days, now)
		if tc.invalid {
			require.ErrorIs(t, err, ErrInvalid, "days %d", tc.days)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.from, w.From.Format("2006-01-02"), "days %d", tc.days)
		require.Equal(t, tc.to, w.To.Format("2006-01-02"), "days %d", tc.days)
	}
}

func TestSummarizeUsage(t *testing.T) {
	t.Parallel()
	w, err := NewUsageWindow(3, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	d := func(s string) time.Time {
		v, err := time.Parse("2006-01-02", s)
		require.NoError(t, err)
		return v
	}
	model, inst := UsageItem{UsageModel, "m"}, UsageItem{UsageInstance, "a100"}
	s := SummarizeUsage("a", "USD", w, []UsageRow{
		{Day: d("2026-11-27"), Item: model, Amount: big.NewInt(1000), Count: 1}, // before the window
		{Day: d("2026-11-29"), Item: model, Amount: big.NewInt(5), Count: 1},
		{Day: d("2026-11-29"), Item: inst, Amount: big.NewInt(9), Count: 3},
		{Day: d("2026-12-01"), Item: model, Amount: big.NewInt(20), Count: 2},
	})
	require.Len(t, s.Days, 3, "every day present")
	require.Equal(t, []string{"2026-11-29", "2026-11-30", "2026-12-01"}, []string{
		s.Days[0].Day.Format("2006-01-02"), s.Days[1].Day.Format("2006-01-02"), s.Days[2].Day.Format("2006-01-02")})
	require.Equal(t, int64(14), s.Days[0].Total.Int64())
	require.Equal(t, inst, s.Days[0].Items[0].Item, "largest first")
	require.Zero(t, s.Days[1].Total.Sign())
	require.Empty(t, s.Days[1].Items)
	require.Equal(t, []UsageAmount{
		{Item: model, Amount: big.NewInt(25), Count: 3},
		{Item: inst, Amount: big.NewInt(9), Count: 3},
	}, s.Totals)
}
