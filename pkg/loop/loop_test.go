package loop_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/loop"
)

func TestEvery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start loop.Start
		// more is how many passes in a row say more is due.
		more      int64
		wantFirst int64 // passes run before the first interval can have passed
	}{
		{name: "now", start: loop.Now, wantFirst: 1},
		{name: "now, catching up", start: loop.Now, more: 3, wantFirst: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			var passes atomic.Int64
			first := make(chan int64, 1)
			done := make(chan error, 1)
			go func() {
				done <- loop.Every(ctx, "test", time.Hour, tt.start, func(context.Context) bool {
					n := passes.Add(1)
					more := n <= tt.more
					if !more {
						first <- n
					}
					return more
				})
			}()
			require.Equal(t, tt.wantFirst, <-first, "passes before the first interval")
			cancel()
			require.NoError(t, <-done)
			require.Equal(t, tt.wantFirst, passes.Load(), "no pass within the hour's interval")
		})
	}
}

func TestAfterIntervalWaitsForTheFirstInterval(t *testing.T) {
	t.Parallel()
	const interval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	start := time.Now()
	var waited time.Duration
	require.NoError(t, loop.Every(ctx, "test", interval, loop.AfterInterval, loop.Passes(func(context.Context) {
		waited = time.Since(start)
		cancel()
	})))
	require.GreaterOrEqual(t, waited, interval, "the first pass ran before one interval")
}

func TestEveryRepeatsEveryInterval(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seen := make(chan struct{})
	var passes atomic.Int64
	go func() {
		_ = loop.Every(ctx, "test", time.Millisecond, loop.AfterInterval, loop.Passes(func(context.Context) {
			if passes.Add(1) == 3 {
				close(seen)
			}
		}))
	}()
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("three passes of a 1 ms loop did not run within 10 s")
	}
}

func TestEveryRefusesANonPositiveInterval(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, -time.Second} {
		err := loop.Every(t.Context(), "sweep", d, loop.Now, loop.Passes(func(context.Context) { t.Error("a pass ran") }))
		require.ErrorContains(t, err, "the sweep interval must be positive")
	}
}
