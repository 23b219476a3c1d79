package app_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/notifications/internal/app"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, ceiling := time.Second, time.Minute
	cases := []struct {
		attempts int
		nominal  time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {40, time.Minute},
	}
	for _, tc := range cases {
		for range 20 {
			d := app.Backoff(tc.attempts, base, ceiling)
			require.LessOrEqual(t, d, tc.nominal, "attempts %d", tc.attempts)
			require.GreaterOrEqual(t, d, tc.nominal*4/5, "attempts %d", tc.attempts)
		}
	}
}
