package money

import (
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBigToProto(t *testing.T) {
	t.Parallel()
	huge, _ := new(big.Int).SetString("9223372036854775807999999999", 10)
	tooHuge := new(big.Int).Add(huge, big.NewInt(1))
	for _, tc := range []struct {
		name         string
		n            *big.Int
		units        int64
		nanos        int32
		wantOverflow bool
	}{
		{"zero", big.NewInt(0), 0, 0, false},
		{"fraction", big.NewInt(2500), 0, 2500, false},
		{"units and nanos", big.NewInt(12_500_000_001), 12, 500_000_001, false},
		{"negative keeps one sign", big.NewInt(-1_250_000_000), -1, -250_000_000, false},
		{"beyond int64 nanos", new(big.Int).Mul(big.NewInt(math.MaxInt64), big.NewInt(10)), math.MaxInt64 / 100_000_000, int32((math.MaxInt64 % 100_000_000) * 10), false},
		{"largest", huge, math.MaxInt64, 999_999_999, false},
		{"beyond int64 units", tooHuge, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := BigToProto(tc.n, "USD")
			if tc.wantOverflow {
				require.ErrorIs(t, err, ErrOverflow)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "USD", m.GetCurrencyCode())
			require.Equal(t, tc.units, m.GetUnits())
			require.Equal(t, tc.nanos, m.GetNanos())
		})
	}
}
