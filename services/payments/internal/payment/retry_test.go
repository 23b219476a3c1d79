package payment

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		b        Backoff
		failures int
		want     time.Duration
	}{
		{"first failure waits the base", Backoff{Base: time.Second, Max: time.Minute}, 1, time.Second},
		{"doubles", Backoff{Base: time.Second, Max: time.Minute}, 2, 2 * time.Second},
		{"doubles again", Backoff{Base: time.Second, Max: time.Minute}, 4, 8 * time.Second},
		{"capped", Backoff{Base: time.Second, Max: time.Minute}, 7, time.Minute},
		{"capped for ever", Backoff{Base: time.Second, Max: time.Minute}, 1_000_000, time.Minute},
		{"no overflow without a maximum", Backoff{Base: time.Second}, 200, time.Second << 33},
		{"zero failures counts as one", Backoff{Base: time.Second, Max: time.Minute}, 0, time.Second},
		{"no base, no wait", Backoff{}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.b.Delay(tc.failures))
		})
	}
}

func TestProcessorRefundSettlement(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status ProcessorRefundStatus
		want   Settlement
	}{
		{ProcessorRefundSucceeded, Settled},
		{ProcessorRefundPending, InFlight},
		{ProcessorRefundRequiresAction, InFlight},
		{"", InFlight},
		{"something_new", InFlight},
		{ProcessorRefundFailed, Refused},
		{ProcessorRefundCanceled, Refused},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.status.Settlement())
		})
	}
}
