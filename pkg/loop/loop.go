// Package loop runs the background passes of the services (sweeps, samplers, followers, pollers)
// on one schedule shape: a pass now or after the first interval, then one every interval, at once
// again while a pass says more is due, until the context is done. A pass logs its own failures:
// a background loop has nobody to return them to, and the next pass retries.
package loop

import (
	"context"
	"fmt"
	"time"
)

// Start says when the first pass runs.
type Start bool

const (
	// Now runs the first pass at once (a follower catching up, a sampler filling its gauge).
	Now Start = true
	// AfterInterval runs the first pass one interval after the start (a sweep or a poll whose
	// first pass the service's start already did).
	AfterInterval Start = false
)

// Every runs pass on the schedule of the package until ctx is done, then returns nil. A pass that
// returns true (more is due) is followed by the next one at once. An interval that is not positive
// is refused, naming the loop what.
func Every(ctx context.Context, what string, interval time.Duration, start Start, pass func(context.Context) (more bool)) error {
	if interval <= 0 {
		return fmt.Errorf("loop: the %s interval must be positive, not %s", what, interval)
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	if start == Now {
		t.Reset(0)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for pass(ctx) && ctx.Err() == nil {
		}
		t.Reset(interval)
	}
}

// Passes adapts a pass that never has more due to Every.
func Passes(pass func(context.Context)) func(context.Context) bool {
	return func(ctx context.Context) bool { pass(ctx); return false }
}
