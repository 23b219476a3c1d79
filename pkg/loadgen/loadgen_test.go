package loadgen

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParallelCallsEachIndexOnce(t *testing.T) {
	t.Parallel()
	var calls [1000]atomic.Int32
	require.NoError(t, Parallel(t.Context(), 8, len(calls), func(i int) error { calls[i].Add(1); return nil }))
	for i := range calls {
		require.Equal(t, int32(1), calls[i].Load(), "index %d", i)
	}
	boom := errors.New("boom")
	require.ErrorIs(t, Parallel(t.Context(), 4, 100, func(i int) error {
		if i == 50 {
			return boom
		}
		return nil
	}), boom)
}

func TestMeasureAndPoll(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	res, err := Measure(t.Context(), 4, 10*time.Millisecond, 50*time.Millisecond, func(context.Context, int, *rand.Rand) error {
		calls.Add(1)
		return nil
	})
	require.NoError(t, err)
	require.Positive(t, res.OpsPerSec)
	require.LessOrEqual(t, res.P50, res.P99)

	boom := errors.New("boom")
	_, err = Measure(t.Context(), 2, 0, time.Minute, func(context.Context, int, *rand.Rand) error { return boom })
	require.ErrorIs(t, err, boom)

	n := 0
	require.NoError(t, Poll(t.Context(), time.Second, time.Millisecond, func() (bool, error) { n++; return n == 3, nil }))
	require.ErrorIs(t, Poll(t.Context(), 5*time.Millisecond, time.Millisecond, func() (bool, error) { return false, nil }), ErrTimeout)
	require.Equal(t, "999µs", Round(999*time.Microsecond))
	require.Equal(t, "1.50ms", Round(1500*time.Microsecond))
}
