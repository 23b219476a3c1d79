package config

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEnvCollectsErrors(t *testing.T) {
	t.Parallel()
	e := FromMap(map[string]string{"A": "x", "B": "5", "C": "2s", "D": "nope", "P": "3mo"})
	require.Equal(t, "x", e.String("A", "def"))
	require.Equal(t, "def", e.String("MISSING", "def"))
	require.Equal(t, 5, e.Int("B", 1))
	require.Equal(t, 2*time.Second, e.Duration("C", 0))
	require.Equal(t, Period{Months: 3}, e.Period("P", Period{}))
	require.NoError(t, e.Err())
	require.Equal(t, 7, e.Int("D", 7))
	_ = e.Required("R")
	err := e.Err()
	require.ErrorContains(t, err, "D: \"nope\" is not an integer")
	require.ErrorContains(t, err, "R is required")
}

func TestPeriod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		from    time.Time
		want    time.Time
		wantErr bool
	}{
		{"3mo", time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), time.Date(2027, 3, 2, 10, 0, 0, 0, time.UTC), false},
		{"3mo", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 15, 0, 0, 0, 0, time.UTC), false},
		{"14d", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), false},
		{"2s", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC), false},
		{"0mo", time.Time{}, time.Time{}, true},
		{"-1s", time.Time{}, time.Time{}, true},
		{"soon", time.Time{}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePeriod(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, p.AddTo(tt.from))
		})
	}
}

func TestEnvInvalid(t *testing.T) {
	t.Parallel()
	e := FromMap(map[string]string{})
	e.Invalid(nil)
	require.NoError(t, e.Err())
	e.Invalid(errors.New("TALLY_X: contradicts TALLY_Y"))
	require.EqualError(t, e.Err(), "TALLY_X: contradicts TALLY_Y")
}
