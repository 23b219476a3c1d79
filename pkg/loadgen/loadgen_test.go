package loadgen

import (
	"errors"
	"sync/atomic"
	"testing"

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
