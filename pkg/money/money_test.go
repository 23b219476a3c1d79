package money

import (
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
)

func TestFromProto(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      *moneypb.Money
		want    Nanos
		wantErr error
	}{
		{"whole units", &moneypb.Money{CurrencyCode: "USD", Units: 12}, 12 * NanosPerUnit, nil},
		{"sub-cent", &moneypb.Money{CurrencyCode: "USD", Nanos: 2500}, 2500, nil},
		{"lower-case currency", &moneypb.Money{CurrencyCode: "usd", Nanos: 2500}, 0, ErrUnknownCurrency},
		{"mixed-case currency", &moneypb.Money{CurrencyCode: "Usd", Nanos: 2500}, 0, ErrUnknownCurrency},
		{"negative", &moneypb.Money{CurrencyCode: "EUR", Units: -1, Nanos: -750_000_000}, -1_750_000_000, nil},
		{"largest", &moneypb.Money{CurrencyCode: "USD", Units: 9_223_372_036, Nanos: 854_775_807}, math.MaxInt64, nil},
		{"empty currency kept empty", &moneypb.Money{Units: 1}, NanosPerUnit, nil},
		{"nil", nil, 0, ErrMissing},
		{"unknown currency", &moneypb.Money{CurrencyCode: "XYZ", Units: 1}, 0, ErrUnknownCurrency},
		{"nanos too large", &moneypb.Money{CurrencyCode: "USD", Nanos: 1_000_000_000}, 0, ErrNanosOutOfRange},
		{"sign mismatch", &moneypb.Money{CurrencyCode: "USD", Units: 1, Nanos: -1}, 0, ErrSignMismatch},
		{"units overflow", &moneypb.Money{CurrencyCode: "USD", Units: math.MaxInt64}, 0, ErrOverflow},
		{"nanos overflow", &moneypb.Money{CurrencyCode: "USD", Units: 9_223_372_036, Nanos: 854_775_808}, 0, ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := FromProto(tt.in)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Nanos)
			back := ToProto(got.Nanos, "USD")
			again, err := FromProto(back)
			require.NoError(t, err)
			require.Equal(t, got.Nanos, again.Nanos, "round trip")
		})
	}
}

func TestParseDecimalAndDisplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Nanos
		display string
		wantErr bool
	}{
		{"12.5", 12_500_000_000, "12.50", false},
		{"0.000002", 2000, "0.000002", false},
		{"-3", -3 * NanosPerUnit, "-3.00", false},
		{"0.0000000001", 0, "", true},
		{"1e3", 0, "", true},
		{"abc", 0, "", true},
		{"", 0, "", true},
		{"99999999999", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDecimal(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.display, got.Display())
		})
	}
}

func TestMulDivCeil(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		quantity *big.Rat
		price    Nanos
		per      int64
		want     Nanos
	}{
		// $2.50 per 1M tokens, 1 token: 2.5e9/1e6 = 2500 nanos exactly.
		{"exact", big.NewRat(1, 1), 2_500_000_000, 1_000_000, 2500},
		// $0.006 per minute, 1 second: 6e6/60 = 100000 exactly.
		{"per minute", big.NewRat(1, 1), 6_000_000, 60, 100_000},
		// $1 per 3 units, 1 unit: 333333333.33… rounds up.
		{"rounds up", big.NewRat(1, 1), NanosPerUnit, 3, 333_333_334},
		{"zero quantity", big.NewRat(0, 1), NanosPerUnit, 3, 0},
		{"fractional quantity", big.NewRat(3, 2), 10, 1, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := MulDivCeil(tt.quantity, tt.price, tt.per)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := MulDivCeil(big.NewRat(math.MaxInt64, 1), math.MaxInt64, 1)
	require.ErrorIs(t, err, ErrOverflow)
}

func FuzzFromProto(f *testing.F) {
	f.Add("USD", int64(1), int32(5))
	f.Add("", int64(-1), int32(-1))
	f.Add("EUR", int64(math.MaxInt64), int32(999_999_999))
	f.Fuzz(func(t *testing.T, cur string, units int64, nanos int32) {
		m, err := FromProto(&moneypb.Money{CurrencyCode: cur, Units: units, Nanos: nanos})
		if err != nil {
			return
		}
		back := ToProto(m.Nanos, m.Currency)
		if back.Units != units || back.Nanos != nanos {
			t.Fatalf("round trip %d/%d -> %d -> %d/%d", units, nanos, m.Nanos, back.Units, back.Nanos)
		}
	})
}
