package app

import (
	"context"
	"sync"

	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
)

// cacheReader coalesces the cache reads of concurrent Authorize calls into pipelines: one Redis
// round trip answers every call that arrived while the previous one was in flight.
type cacheReader struct {
	cache *balancecache.Cache
	reqs  chan cacheRead
	once  sync.Once
}

type cacheRead struct {
	ctx   context.Context
	org   string
	reply chan cacheReply
}

type cacheReply struct {
	entry balancecache.Entry
	ok    bool
	err   error
}

const (
	cacheReadBatch   = 128
	cacheReadWorkers = 2
)

func newCacheReader(c *balancecache.Cache) *cacheReader {
	return &cacheReader{cache: c, reqs: make(chan cacheRead, cacheReadBatch*cacheReadWorkers)}
}

// run serves reads until ctx is done.
func (r *cacheReader) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range cacheReadWorkers {
		wg.Go(func() {
			batch := make([]cacheRead, 0, cacheReadBatch)
			for {
				batch = batch[:0]
				select {
				case <-ctx.Done():
					return
				case first := <-r.reqs:
					batch = append(batch, first)
				}
			fill:
				for len(batch) < cacheReadBatch {
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

func (r *cacheReader) serve(batch []cacheRead) {
	orgs := make([]string, len(batch))
	for i, b := range batch {
		orgs[i] = b.org
	}
	// The batch outlives any single caller: bounded by the cache's own timeout instead.
	entries, found, err := r.cache.GetMany(context.WithoutCancel(batch[0].ctx), orgs)
	for i, b := range batch {
		if err != nil {
			b.reply <- cacheReply{err: err}
			continue
		}
		b.reply <- cacheReply{entry: entries[i], ok: found[i]}
	}
}

// get reads org through the next pipeline.
func (r *cacheReader) get(ctx context.Context, org string) (balancecache.Entry, bool, error) {
	reply := make(chan cacheReply, 1)
	select {
	case r.reqs <- cacheRead{ctx: ctx, org: org, reply: reply}:
	case <-ctx.Done():
		return balancecache.Entry{}, false, ctx.Err()
	}
	select {
	case rep := <-reply:
		return rep.entry, rep.ok, rep.err
	case <-ctx.Done():
		return balancecache.Entry{}, false, ctx.Err()
	}
}
