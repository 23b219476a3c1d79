package app

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// cacheUpdater writes balances to Redis off the commit path. It is bounded and coalescing: it
// holds at most one state per organization (the newest wins), so a slow or dead Redis costs the
// committer one map insert per account and never a wait. What cannot be written — a failed or
// timed-out write, or a state that finds the queue full — invalidates the cache (an epoch bump)
// instead of blocking. A state read by Authorize's fallback only rebuilds an entry: dropping it
// from a full queue leaves the cache no older than it was, so only states that come from a
// commit ("required") invalidate when dropped.
type cacheUpdater struct {
	cache      *balancecache.Cache
	capacity   int
	invalidate func(reason string)
	logger     *slog.Logger
	metrics    *metrics

	mu      sync.Mutex
	pending map[string]pendingUpdate
	// writing is the batch being written: still this replica's newest state of those
	// organizations until the write returns.
	writing map[string]pendingUpdate
	wake    chan struct{}
	failing atomic.Bool
}

type pendingUpdate struct {
	entry    balancecache.Entry
	required bool
}

// newer says whether entry a should replace b (the rule of the cache's own script).
func newer(a, b balancecache.Entry) bool {
	return a.Account.Version > b.Account.Version || (a.Account.Version == b.Account.Version && a.Epoch > b.Epoch)
}

// cacheWriteChunk bounds the entries of one Redis pipeline.
const cacheWriteChunk = 512

func newCacheUpdater(c *balancecache.Cache, capacity int, invalidate func(string), logger *slog.Logger, m *metrics) *cacheUpdater {
	return &cacheUpdater{cache: c, capacity: capacity, invalidate: invalidate, logger: logger, metrics: m,
		pending: map[string]pendingUpdate{}, wake: make(chan struct{}, 1)}
}

// submit queues accts, read under epoch; required says they come from a commit.
func (u *cacheUpdater) submit(epoch int64, required bool, accts ...ledger.Account) {
	dropped := 0
	lost := false
	u.mu.Lock()
	for _, a := range accts {
		e := balancecache.Entry{Account: a, Epoch: epoch}
		if p, ok := u.pending[a.OrgID]; ok {
			if newer(e, p.entry) {
				p.entry = e
			}
			p.required = p.required || required
			u.pending[a.OrgID] = p
			continue
		}
		if len(u.pending) >= u.capacity {
			dropped++
			lost = lost || required
			continue
		}
		u.pending[a.OrgID] = pendingUpdate{entry: e, required: required}
	}
	u.mu.Unlock()
	if dropped > 0 {
		u.metrics.updates.WithLabelValues(updateDropped).Add(float64(dropped))
	}
	if lost {
		u.invalidate(reasonQueueFull)
	}
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// lookup returns this replica's newest state of org not yet confirmed in Redis.
func (u *cacheUpdater) lookup(org string) (balancecache.Entry, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if p, ok := u.pending[org]; ok {
		return p.entry, true
	}
	p, ok := u.writing[org]
	return p.entry, ok
}

func (u *cacheUpdater) queued() float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return float64(len(u.pending))
}

// run writes what is queued until ctx is done (the last states are flushed by the caller, once
// nothing commits any more).
func (u *cacheUpdater) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.wake:
		}
		u.flush(ctx)
	}
}

// flush writes everything queued; it reports whether every required state landed.
func (u *cacheUpdater) flush(ctx context.Context) bool {
	u.mu.Lock()
	batch := u.pending
	if len(batch) == 0 {
		u.mu.Unlock()
		return true
	}
	u.pending, u.writing = make(map[string]pendingUpdate, len(batch)), batch
	u.mu.Unlock()

	ok := true
	entries := make([]balancecache.Entry, 0, min(len(batch), cacheWriteChunk))
	required := false
	write := func() {
		err := u.cache.Set(ctx, entries...)
		switch err {
		case nil:
			u.metrics.updates.WithLabelValues(updateWritten).Add(float64(len(entries)))
			if u.failing.Swap(false) {
				u.logger.InfoContext(ctx, "balance cache writable again")
			}
		default:
			u.metrics.updates.WithLabelValues(updateFailed).Add(float64(len(entries)))
			u.metrics.redisErrors.WithLabelValues(redisWrite).Inc()
			if !u.failing.Swap(true) {
				u.logger.WarnContext(ctx, "balance cache write failed; Authorize reads PostgreSQL for what it may have missed", "err", err)
			}
			// Invalidated before the states leave "writing", so no replica answers from the older
			// entries Redis may still hold — also when the write was never sent (breaker open,
			// perhaps opened by a failed read): Redis then certainly keeps the older entry, stamped
			// with the current epoch. Requests are coalesced into one bump per epoch round.
			u.invalidate(reasonWriteFailed)
			if required {
				ok = false
			}
		}
		entries, required = entries[:0], false
	}
	for _, p := range batch {
		entries = append(entries, p.entry)
		required = required || p.required
		if len(entries) == cacheWriteChunk {
			write()
		}
	}
	if len(entries) > 0 {
		write()
	}
	u.mu.Lock()
	u.writing = nil
	u.mu.Unlock()
	return ok
}
