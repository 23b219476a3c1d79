package app

import (
	"context"
	"time"
)

// every runs pass now and then once every interval until ctx is done. A pass that says more is due
// is followed by the next one at once. pass logs its own failures: a background loop has nobody to
// return them to, and the next pass retries.
func every(ctx context.Context, interval time.Duration, pass func(context.Context) (more bool)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		more := pass(ctx)
		if ctx.Err() != nil {
			return
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
