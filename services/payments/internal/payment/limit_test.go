package payment

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

func TestCheckRequestAmount(t *testing.T) {
	t.Parallel()
	const unit = money.Nanos(money.NanosPerUnit)
	for _, tc := range []struct {
		name          string
		amount, limit money.Nanos
		err           string
	}{
		{name: "below", amount: 999_999 * unit, limit: DefaultMaxRequestAmount},
		{name: "at the limit", amount: DefaultMaxRequestAmount, limit: DefaultMaxRequestAmount},
		{name: "one nano above", amount: DefaultMaxRequestAmount + 1, limit: DefaultMaxRequestAmount,
			err: "amount exceeds the per-request maximum of 1000000 (TALLY_MAX_REQUEST_AMOUNT)"},
		{name: "a fractional limit", amount: 2501 * unit, limit: 2500*unit + unit/2,
			err: "amount exceeds the per-request maximum of 2500.5 (TALLY_MAX_REQUEST_AMOUNT)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckRequestAmount(tc.amount, tc.limit)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestRefundSameRequest(t *testing.T) {
	t.Parallel()
	r := Refund{PaymentID: "p-1", Requested: 0, Reason: "customer asked"}
	require.True(t, r.SameRequest("p-1", 0, "customer asked"))
	require.False(t, r.SameRequest("p-2", 0, "customer asked"))
	require.False(t, r.SameRequest("p-1", 1, "customer asked"))
	require.False(t, r.SameRequest("p-1", 0, "customer asked again"))
}
