package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

func TestMaxRequestAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    money.Nanos
		wantErr string
	}{
		{"default", map[string]string{}, money.DefaultMaxRequestAmount, ""},
		{"units", map[string]string{"TALLY_MAX_REQUEST_AMOUNT": "5000"}, 5000 * money.NanosPerUnit, ""},
		{"fraction", map[string]string{"TALLY_MAX_REQUEST_AMOUNT": " 2500.5 "}, 2_500_500_000_000, ""},
		{"zero", map[string]string{"TALLY_MAX_REQUEST_AMOUNT": "0"}, money.DefaultMaxRequestAmount, "TALLY_MAX_REQUEST_AMOUNT: the per-request maximum must be positive"},
		{"exponent", map[string]string{"TALLY_MAX_REQUEST_AMOUNT": "1e6"}, money.DefaultMaxRequestAmount, "TALLY_MAX_REQUEST_AMOUNT: invalid decimal"},
		{"beyond int64 nanos", map[string]string{"TALLY_MAX_REQUEST_AMOUNT": "10000000000"}, money.DefaultMaxRequestAmount, "TALLY_MAX_REQUEST_AMOUNT: amount exceeds the int64 range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := FromMap(tt.env)
			got := e.MaxRequestAmount()
			require.Equal(t, tt.want, got.Max())
			if tt.wantErr == "" {
				require.NoError(t, e.Err())
				return
			}
			require.ErrorContains(t, e.Err(), tt.wantErr)
		})
	}
}

func TestDecimal(t *testing.T) {
	t.Parallel()
	e := FromMap(map[string]string{"A": "12.5", "B": "twelve"})
	require.Equal(t, money.Nanos(12_500_000_000), e.Decimal("A", 0))
	require.Equal(t, money.Nanos(7), e.Decimal("MISSING", 7))
	require.NoError(t, e.Err())
	require.Equal(t, money.Nanos(3), e.Decimal("B", 3))
	require.ErrorContains(t, e.Err(), "B: invalid decimal amount")
}
