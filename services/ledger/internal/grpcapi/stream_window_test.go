package grpcapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/ledger/internal/streamwindow"
)

// TestAStreamFilledToItsWindowLetsTheWindowGrow: a client that follows the window never sends
// past it, so the receiver never waits; filling the window must be enough for the Window to
// know the stream is held back by it, or fast commits could never grow it.
func TestAStreamFilledToItsWindowLetsTheWindowGrow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fill int
		grow bool
	}{
		{"filled to the window", 8, true},
		{"below the window", 7, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := streamwindow.New(streamwindow.Config{Target: 10 * time.Millisecond, Min: 8, StreamMin: 1})
			require.NoError(t, err)
			defer w.Join()()
			ds := newDebitStream(w)
			for range tt.fill {
				require.NoError(t, ds.acquire(t.Context()))
			}
			// Commits far under the target, for longer than an interval.
			at := time.Unix(1_000_000, 0)
			for range 10 {
				at = at.Add(10 * time.Millisecond)
				w.Acked(at.Add(-time.Millisecond), at, 1)
			}
			if tt.grow {
				require.Greater(t, w.Grant(), 8)
			} else {
				require.Equal(t, 8, w.Grant())
			}
		})
	}
}
