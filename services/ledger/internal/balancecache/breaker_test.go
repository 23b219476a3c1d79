package balancecache

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBreakerLetsOneProbeThroughWhenHalfOpen(t *testing.T) {
	t.Parallel()
	errDown := errors.New("redis down")
	for _, tc := range []struct {
		name       string
		probe      error
		counts     bool
		wantClosed bool
	}{
		{name: "a successful probe closes it", probe: nil, counts: true, wantClosed: true},
		{name: "a failed probe opens it again", probe: errDown, counts: true, wantClosed: false},
		{name: "a probe its caller gave up on lets the next one probe", probe: errDown, counts: false, wantClosed: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b breaker
			require.True(t, b.allow(), "closed: every call goes through")
			b.record(errDown, true)
			require.False(t, b.allow(), "open right after a failure")

			// The open window has passed: half open.
			b.openUntil.Store(time.Now().Add(-time.Millisecond).UnixNano())
			require.True(t, b.allow(), "the first call probes")
			require.False(t, b.allow(), "the others fail fast while the probe is in flight")
			require.False(t, b.allow())

			b.record(tc.probe, tc.counts)
			switch {
			case tc.wantClosed:
				require.True(t, b.allow())
				require.True(t, b.allow(), "closed again: every call goes through")
			case tc.counts:
				require.False(t, b.allow(), "open again after the failed probe")
			default:
				require.True(t, b.allow(), "the uncounted probe leaves the breaker half open: a new probe")
				require.False(t, b.allow())
			}
		})
	}
}
