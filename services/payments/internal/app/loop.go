package app

import (
	"context"
	"fmt"
	"time"
)

// every runs pass now and then once every interval until ctx is done (nil); an interval that is not
// positive is refused, naming the loop what. A pass that says more is due is followed by the next
// one at once. pass logs its own failures: a background loop has nobody to return them to, and the
// next pass retries.
func every(ctx context.Context, what string, interval time.Duration, pass func(context.Context) (more bool)) error {
	if interval <= 0 {
		return fmt.Errorf("app: the %s interval must be positive", what)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		more := pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
