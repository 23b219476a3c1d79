package clock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/clock"
)

func TestManual(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := clock.NewManual(start)
	now := c.Now // a *Manual is a Now func
	require.Equal(t, start, now())
	require.Equal(t, start.Add(time.Hour), c.Advance(time.Hour))
	require.Equal(t, start.Add(time.Hour), now())
	c.Set(start)
	require.Equal(t, start, now())
}
