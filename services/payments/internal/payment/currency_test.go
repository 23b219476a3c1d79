package payment

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

func TestToMinor(t *testing.T) {
	t.Parallel()
	const u = money.NanosPerUnit
	for _, tc := range []struct {
		name  string
		m     money.Money
		minor int64
		err   bool
	}{
		{"dollars and cents", money.Money{Nanos: 12*u + 340_000_000, Currency: "USD"}, 1234, false},
		{"fraction of a cent", money.Money{Nanos: 12*u + 345_000_000, Currency: "USD"}, 0, true},
		{"one nano", money.Money{Nanos: 1, Currency: "EUR"}, 0, true},
		{"zero-decimal yen", money.Money{Nanos: 1500 * u, Currency: "JPY"}, 1500, false},
		{"yen fraction", money.Money{Nanos: 1500*u + 500_000_000, Currency: "JPY"}, 0, true},
		{"three-decimal dinar", money.Money{Nanos: 5*u + 120_000_000, Currency: "KWD"}, 5120, false},
		{"dinar not a multiple of ten fils", money.Money{Nanos: 5*u + 123_000_000, Currency: "KWD"}, 0, true},
		{"krona whole units", money.Money{Nanos: 700 * u, Currency: "ISK"}, 70000, false},
		{"krona with aurar", money.Money{Nanos: 700*u + 500_000_000, Currency: "ISK"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ToMinor(tc.m)
			if tc.err {
				require.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.minor, got)
			require.Equal(t, tc.m, FromMinor(got, tc.m.Currency))
		})
	}
}

func TestFormatMinor(t *testing.T) {
	t.Parallel()
	require.Equal(t, "12.30 USD", FormatMinor(money.Money{Nanos: 12_300_000_000, Currency: "USD"}))
	require.Equal(t, "1500 JPY", FormatMinor(money.Money{Nanos: 1500_000_000_000, Currency: "JPY"}))
	require.Equal(t, "5.120 KWD", FormatMinor(money.Money{Nanos: 5_120_000_000, Currency: "KWD"}))
	require.Equal(t, "-20.00 USD", FormatMinor(money.Money{Nanos: -20_000_000_000, Currency: "USD"}))
}

// FuzzToMinor checks that a top-up amount is never rounded: what converts, converts back exactly.
func FuzzToMinor(f *testing.F) {
	f.Add(int64(1_234_000_000), "USD")
	f.Add(int64(1), "JPY")
	f.Add(int64(-5_000_000_000), "KWD")
	f.Fuzz(func(t *testing.T, n int64, cur string) {
		m := money.Money{Nanos: money.Nanos(n), Currency: cur}
		minor, err := ToMinor(m)
		if err != nil {
			return
		}
		back := FromMinor(minor, cur)
		if back.Nanos != m.Nanos {
			t.Fatalf("%v converted to %d minor units, which is %v", m, minor, back)
		}
	})
}
