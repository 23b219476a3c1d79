// Package loadgen holds what the benchmarks share: running many calls with bounded concurrency
// (Parallel), a closed-loop latency measure (Measure), private durable stores (StartStores) and
// polling for a condition (Poll). The services themselves start through their harnesses
// (services/<svc>/<svc>test).
package loadgen

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Parallel calls f(0) … f(n-1) from width goroutines and returns the errors joined (each
// goroutine stops at its first error) or ctx's error.
func Parallel(ctx context.Context, width, n int, f func(int) error) error {
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make([]error, width)
	for w := range width {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}
