package app

import (
	"context"
	"sync"
)

// batchReader coalesces the reads of concurrent Authorize calls: one round trip (a Redis
// pipeline, one PostgreSQL query) answers every call that arrived while the previous one was in
// flight. Under load this is what keeps Authorize fast, from Redis and, when Redis cannot be
// trusted, from PostgreSQL.
type batchReader[T any] struct {
	// fetch reads the organizations of one batch; it bounds its own time (the batch outlives
	// any single caller).
	fetch   func(ctx context.Context, orgs []string) ([]T, error)
	reqs    chan batchRead[T]
	batch   int
	workers int
}

type batchRead[T any] struct {
	ctx   context.Context
	org   string
	reply chan batchReply[T]
}

type batchReply[T any] struct {
	val T
	err error
}

func newBatchReader[T any](batch, workers int, fetch func(context.Context, []string) ([]T, error)) *batchReader[T] {
	return &batchReader[T]{fetch: fetch, reqs: make(chan batchRead[T], batch*workers), batch: batch, workers: workers}
}

// run serves reads until ctx is done.
func (r *batchReader[T]) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range r.workers {
		wg.Go(func() {
			batch := make([]batchRead[T], 0, r.batch)
			for {
				batch = batch[:0]
				select {
				case <-ctx.Done():
					return
				case first := <-r.reqs:
					batch = append(batch, first)
				}
			fill:
				for len(batch) < r.batch {
					select {
					case next := <-r.reqs:
						batch = append(batch, next)
					default:
						break fill
					}
				}
				r.serve(batch)
			}
		})
	}
	wg.Wait()
}

// serve reads each organization of the batch once, however many of its calls wait on it (a hot
// organization's concurrent Authorize calls share one HMGET): every read of a batch is sent in
// the same round trip, after every call of the batch arrived, so one answers them all alike.
func (r *batchReader[T]) serve(batch []batchRead[T]) {
	orgs, at := distinctOrgs(batch)
	vals, err := r.fetch(context.WithoutCancel(batch[0].ctx), orgs)
	for i, b := range batch {
		if err != nil {
			b.reply <- batchReply[T]{err: err}
			continue
		}
		b.reply <- batchReply[T]{val: vals[at[i]]}
	}
}

// distinctOrgs returns the batch's organizations without repeats, and where each call's is.
func distinctOrgs[T any](batch []batchRead[T]) (orgs []string, at []int) {
	at = make([]int, len(batch))
	if len(batch) == 1 {
		return []string{batch[0].org}, at
	}
	index := make(map[string]int, len(batch))
	for i, b := range batch {
		j, ok := index[b.org]
		if !ok {
			j = len(orgs)
			index[b.org] = j
			orgs = append(orgs, b.org)
		}
		at[i] = j
	}
	return orgs, at
}

// get reads org through the next batch.
func (r *batchReader[T]) get(ctx context.Context, org string) (T, error) {
	var zero T
	reply := make(chan batchReply[T], 1)
	select {
	case r.reqs <- batchRead[T]{ctx: ctx, org: org, reply: reply}:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case rep := <-reply:
		return rep.val, rep.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
