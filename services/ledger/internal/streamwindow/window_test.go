package streamwindow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/ledger/internal/streamwindow"
)

// clock is a fake clock: the tests say when each debit was received and acknowledged.
type clock struct{ now time.Time }

func (c *clock) advance(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

// commits acknowledges batches of debits for a span of fake time: each batch's debits were
// received latency before their acknowledgement, one batch every step; limited says whether a
// stream waited for its share in the meantime.
func commits(w *streamwindow.Window, c *clock, span, step, latency time.Duration, batch int, limited bool) {
	for end := c.now.Add(span); c.now.Before(end); {
		if limited {
			w.Limited()
		}
		acked := c.advance(step)
		w.Acked(acked.Add(-latency), acked, batch)
	}
}

func newWindow(t *testing.T, cfg streamwindow.Config) *streamwindow.Window {
	t.Helper()
	w, err := streamwindow.New(cfg)
	require.NoError(t, err)
	return w
}

func TestWindowFollowsCommitLatency(t *testing.T) {
	t.Parallel()
	cfg := streamwindow.Config{Target: 20 * time.Millisecond, Min: 100, Max: 10_000, StreamMin: 10, Interval: 100 * time.Millisecond}
	tests := []struct {
		name    string
		start   time.Duration // fast commits first, to grow the window from its floor
		latency time.Duration
		limited bool
		want    func(t *testing.T, before, after int)
	}{
		{"fast commits with full windows grow it to its ceiling", 0, 2 * time.Millisecond, true, func(t *testing.T, before, after int) {
			require.Equal(t, cfg.Min, before)
			require.Equal(t, cfg.Max, after)
		}},
		{"slow commits shrink it to its floor", 2 * time.Second, 200 * time.Millisecond, true, func(t *testing.T, before, after int) {
			require.Equal(t, cfg.Max, before)
			require.Equal(t, cfg.Min, after)
		}},
		{"commits somewhat over the target shrink it in proportion", 2 * time.Second, 25 * time.Millisecond, true, func(t *testing.T, before, after int) {
			require.Equal(t, cfg.Max, before)
			require.Less(t, after, before)
			require.Greater(t, after, cfg.Min)
		}},
		{"fast commits that no stream waited for leave it as it is", 0, 2 * time.Millisecond, false, func(t *testing.T, before, after int) {
			require.Equal(t, cfg.Min, before)
			require.Equal(t, cfg.Min, after)
		}},
		{"slow commits shrink it even when no stream waited", 2 * time.Second, time.Second, false, func(t *testing.T, before, after int) {
			require.Equal(t, cfg.Max, before)
			require.Equal(t, cfg.Min, after)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWindow(t, cfg)
			c := &clock{now: time.Unix(1_000_000, 0)}
			commits(w, c, tt.start, 10*time.Millisecond, 2*time.Millisecond, 50, true)
			before := w.Total()
			commits(w, c, 2*time.Second, 10*time.Millisecond, tt.latency, 50, tt.limited)
			tt.want(t, before, w.Total())
		})
	}
}

// TestWindowSettlesAtRateTimesTarget runs a closed loop on the fake clock: streams keep their
// windows full, the committer acknowledges at a fixed rate, so a debit's latency is the window
// over the rate; the window settles where that latency is the target.
func TestWindowSettlesAtRateTimesTarget(t *testing.T) {
	t.Parallel()
	const rate = 15_000.0 // debits per second
	for _, target := range []time.Duration{10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond} {
		t.Run(target.String(), func(t *testing.T) {
			t.Parallel()
			w := newWindow(t, streamwindow.Config{Target: target, Min: 32, Max: 100_000, StreamMin: 1})
			c := &clock{now: time.Unix(1_000_000, 0)}
			step := time.Millisecond
			for range 5_000 {
				latency := time.Duration(float64(w.Total()) / rate * float64(time.Second))
				w.Limited()
				acked := c.advance(step)
				w.Acked(acked.Add(-latency), acked, int(rate*step.Seconds()))
			}
			want := rate * target.Seconds()
			require.InEpsilon(t, want, float64(w.Total()), 0.1, "window %d, rate × target %.0f", w.Total(), want)
		})
	}
}

func TestWindowIsSharedByTheOpenStreams(t *testing.T) {
	t.Parallel()
	w := newWindow(t, streamwindow.Config{Min: 1000, StreamMin: 64})
	require.Equal(t, 1000, w.Grant(), "no stream yet: the whole window")
	leaves := make([]func(), 0, 20)
	for range 4 {
		leaves = append(leaves, w.Join())
	}
	require.Equal(t, 250, w.Grant())
	for range 16 {
		leaves = append(leaves, w.Join())
	}
	require.Equal(t, 64, w.Grant(), "a stream's share never goes below StreamMin")
	for _, leave := range leaves[1:] {
		leave()
		leave() // leaving twice counts once
	}
	require.Equal(t, 1000, w.Grant())
}

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	for _, cfg := range []streamwindow.Config{
		{Target: -time.Millisecond},
		{Min: 10, Max: 5},
		{StreamMin: -1},
	} {
		_, err := streamwindow.New(cfg)
		require.Error(t, err, "%+v", cfg)
	}
}
