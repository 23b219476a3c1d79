package money

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Nanos
		wantErr string
	}{
		{"1000000", 1_000_000 * NanosPerUnit, ""},
		{"2500.5", 2_500_500_000_000, ""},
		{"0.000000001", 1, ""},
		{"9223372036.854775807", math.MaxInt64, ""},
		{"0", 0, "must be positive"},
		{"-5", 0, "must be positive"},
		{"1e6", 0, "invalid decimal"},
		{"9223372036.854775808", 0, "int64 range"},
		{"0.0000000001", 0, "more than 9 fractional digits"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			l, err := ParseLimit(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, l.Max())
			again, err := ParseLimit(l.String())
			require.NoError(t, err)
			require.Equal(t, l, again, "String round-trips through ParseLimit")
		})
	}
}

func TestLimitCheck(t *testing.T) {
	t.Parallel()
	def := Limit{}
	small, err := ParseLimit("2500.5")
	require.NoError(t, err)
	tests := []struct {
		name  string
		limit Limit
		n     Nanos
		ok    bool
	}{
		{"zero limit is the default: max", def, DefaultMaxRequestAmount, true},
		{"zero limit is the default: max+1", def, DefaultMaxRequestAmount + 1, false},
		{"negative max", def, -DefaultMaxRequestAmount, true},
		{"negative max-1", def, -DefaultMaxRequestAmount - 1, false},
		{"int64 max", def, math.MaxInt64, false},
		{"int64 min", def, math.MinInt64, false},
		{"zero", def, 0, true},
		{"small limit: max", small, 2_500_500_000_000, true},
		{"small limit: max+1", small, 2_500_500_000_001, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.limit.Check("amount", tt.n)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrOverLimit)
		})
	}
	require.EqualError(t, def.Check("amount", DefaultMaxRequestAmount+1),
		"amount exceeds the per-request maximum of 1000000 (TALLY_MAX_REQUEST_AMOUNT)")
	require.EqualError(t, small.Check("hourly_price", math.MaxInt64),
		"hourly_price exceeds the per-request maximum of 2500.5 (TALLY_MAX_REQUEST_AMOUNT)")
}

func TestCheckedArithmetic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		f       func() (Nanos, error)
		want    Nanos
		wantErr bool
	}{
		{"add", func() (Nanos, error) { return Add(2, 3) }, 5, false},
		{"add overflow", func() (Nanos, error) { return Add(math.MaxInt64, 1) }, 0, true},
		{"add underflow", func() (Nanos, error) { return Add(math.MinInt64, -1) }, 0, true},
		{"sub", func() (Nanos, error) { return Sub(2, 3) }, -1, false},
		{"sub overflow", func() (Nanos, error) { return Sub(math.MaxInt64, -1) }, 0, true},
		{"sub underflow", func() (Nanos, error) { return Sub(math.MinInt64+5, 6) }, 0, true},
		{"sub to min", func() (Nanos, error) { return Sub(-1, math.MaxInt64) }, math.MinInt64, false},
		{"neg", func() (Nanos, error) { return Neg(math.MaxInt64) }, -math.MaxInt64, false},
		{"neg min", func() (Nanos, error) { return Neg(math.MinInt64) }, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.f()
			if tt.wantErr {
				require.ErrorIs(t, err, ErrOverflow)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestDecimal(t *testing.T) {
	t.Parallel()
	for n, want := range map[Nanos]string{
		0: "0", 1: "0.000000001", -2000: "-0.000002", 12 * NanosPerUnit: "12", 2_500_500_000_000: "2500.5",
		math.MinInt64: "-9223372036.854775808",
	} {
		require.Equal(t, want, n.Decimal())
	}
}
