package catalog

import (
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseQuantity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string // String() of the result
		wantErr bool
	}{
		{in: "0", want: "0"},
		{in: "1200", want: "1200"},
		{in: "12.5", want: "12.5"},
		{in: "12.500", want: "12.5"},
		{in: "007", want: "7"},
		{in: "0.000000001", want: "0.000000001"},
		{in: "1000000000000000", want: "1000000000000000"},
		{in: "999999999999999.999999999", want: "999999999999999.999999999"},
		{in: "1000000000000000.000000001", wantErr: true},
		{in: "1000000000000001", wantErr: true},
		{in: "99999999999999999999999999", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: "0x10", wantErr: true},
		{in: "1.", wantErr: true},
		{in: ".5", wantErr: true},
		{in: "1.0000000001", wantErr: true},
		{in: "", wantErr: true},
		{in: " 1", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "ten", wantErr: true},
		{in: "1/3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			q, err := ParseQuantity(tt.in)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalidQuantity)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, q.String())
			exact, ok := new(big.Rat).SetString(tt.in)
			require.True(t, ok)
			require.Zero(t, exact.Cmp(q.Rat()), "Rat() = %s", q.Rat())
		})
	}
}

func TestParseUsageNamesTheUnit(t *testing.T) {
	t.Parallel()
	_, err := ParseUsage(map[string]string{"input_tokens": "-5"})
	require.ErrorIs(t, err, ErrInvalidQuantity)
	require.ErrorContains(t, err, "input_tokens")
}

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"0", "12.5", "1e3", "-1", "999999999999999.999999999", "1."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuantity(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidQuantity)
			return
		}
		require.NoError(t, q.check())
		back, err := ParseQuantity(q.String())
		require.NoError(t, err)
		require.Equal(t, q, back)
	})
}
