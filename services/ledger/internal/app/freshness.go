package app

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// How a cache entry is proven fresh.
//
// PostgreSQL owns a cache epoch (one row, ledger.cache_epoch). Every cache entry is stamped with
// the epoch read in the same PostgreSQL transaction or statement that read the state it holds,
// so a stamp is never newer than the epoch current when that state was committed. Whenever the
// cache may have missed a change, the epoch is bumped, which retires every entry at once on
// every replica:
//
//   - a replica starts (it may have crashed between a commit and its cache write);
//   - a replica is lost: it stopped beating for ReplicaTimeout (killed, partitioned), so the
//     writes it had committed may never reach the cache;
//   - a connection reaches another Redis server than before (restart, maybe from an older
//     snapshot, or a failover: its data may be older than PostgreSQL);
//   - a cache write failed or timed out (its outcome is unknown) or was dropped by a full
//     updater queue, or a batch's COMMIT went unanswered.
//
// A bump is durable and begins after the event that asked for it, so any entry older than that
// event's state carries an older stamp. Each replica reads the epoch every EpochInterval and
// keeps the reading with the time its query was sent. Authorize trusts an entry only if its
// stamp equals the reading, the reading is younger than EpochMaxAge, and this replica has no
// bump of its own pending (it stops trusting the cache the moment it asks for one). Otherwise it
// reads PostgreSQL. What the cache can miss is therefore only what is in flight: writes
// committed but not yet written to Redis (the updater's queue, bounded by the Redis timeout),
// and, for other replicas, the EpochMaxAge before they see a bump (ReplicaTimeout after a
// replica is lost).

// EpochStore is the PostgreSQL side of the cache epoch (store.Store).
type EpochStore interface {
	BumpCacheEpoch(ctx context.Context, replica string) (int64, error)
	BeatCacheEpoch(ctx context.Context, replica string, lostAfter time.Duration) (epoch int64, lost int, err error)
	LeaveCacheEpoch(ctx context.Context, replica string) error
}

// epochReading is a value of the epoch and when the query that read it was sent: the epoch was
// exactly that at that time (its snapshot was taken after).
type epochReading struct {
	epoch int64
	at    time.Time
}

// minBumpGap spaces this replica's bumps, so a Redis outage (every write failing) costs
// PostgreSQL a few bumps per second rather than one per failed write.
const minBumpGap = 50 * time.Millisecond

// epochKeeper holds this replica's reading of the cache epoch and performs its bumps.
type epochKeeper struct {
	store     EpochStore
	replica   string
	interval  time.Duration
	maxAge    time.Duration
	lostAfter time.Duration
	logger    *slog.Logger
	metrics   *metrics

	reading atomic.Pointer[epochReading]
	// requested counts the bumps asked for, done the requests a completed bump has answered
	// (one that began after them). Pending while they differ.
	requested atomic.Uint64
	done      atomic.Uint64
	wake      chan struct{}
	failing   atomic.Bool // the last call to PostgreSQL failed (log once per outage)
}

func newEpochKeeper(st EpochStore, replica string, interval, maxAge, lostAfter time.Duration, logger *slog.Logger, m *metrics) *epochKeeper {
	k := &epochKeeper{store: st, replica: replica, interval: interval, maxAge: maxAge, lostAfter: lostAfter,
		logger: logger, metrics: m, wake: make(chan struct{}, 1)}
	k.invalidate(reasonStart) // the first thing a replica does is bump
	return k
}

// Reasons for invalidating the cache (a bounded metric label).
const (
	reasonStart          = "start"
	reasonRedisServer    = "redis_server_changed"
	reasonWriteFailed    = "cache_write_failed"
	reasonQueueFull      = "queue_full"
	reasonCommitUnknown  = "commit_outcome_unknown"
	reasonReplicaLost    = "replica_lost"
	reasonShutdownFailed = "shutdown_writes_failed"
)

// current returns the epoch an entry must be stamped with to be trusted now; ok is false when
// this replica cannot show it (no recent reading, or a bump of its own pending).
func (k *epochKeeper) current() (epoch int64, ok bool) {
	if k.requested.Load() != k.done.Load() {
		return 0, false
	}
	r := k.reading.Load()
	if r == nil || time.Since(r.at) > k.maxAge {
		return 0, false
	}
	return r.epoch, true
}

// invalidate asks for a bump: this replica trusts no entry until it is done.
func (k *epochKeeper) invalidate(reason string) {
	k.requested.Add(1)
	k.metrics.invalidations.WithLabelValues(reason).Inc()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// observe records an epoch read by any query sent at at (say, Authorize's fallback read); it
// never moves the reading back, and is ignored while a bump is pending.
func (k *epochKeeper) observe(epoch int64, at time.Time) {
	if epoch == 0 || k.requested.Load() != k.done.Load() {
		return
	}
	k.set(epoch, at)
}

func (k *epochKeeper) set(epoch int64, at time.Time) {
	next := &epochReading{epoch: epoch, at: at}
	for {
		cur := k.reading.Load()
		if cur != nil && (cur.epoch > epoch || (cur.epoch == epoch && !at.After(cur.at))) {
			return
		}
		if k.reading.CompareAndSwap(cur, next) {
			k.metrics.epoch.Set(float64(epoch))
			return
		}
	}
}

// run bumps when asked and reads the epoch (beating for this replica) every interval, until ctx
// is done.
func (k *epochKeeper) run(ctx context.Context) {
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		if k.requested.Load() != k.done.Load() {
			if k.bump(ctx) {
				// Bumps are spaced; requests meanwhile are answered by the next one.
				gap := time.NewTimer(minBumpGap)
				select {
				case <-ctx.Done():
					gap.Stop()
					return
				case <-gap.C:
				}
				continue
			}
		} else {
			k.beat(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-k.wake:
		}
	}
}

// bump performs one bump answering every request made before it began.
func (k *epochKeeper) bump(ctx context.Context) bool {
	seq := k.requested.Load()
	sent := time.Now()
	epoch, err := k.store.BumpCacheEpoch(ctx, k.replica)
	if err != nil {
		k.failed(ctx, "bumping the cache epoch failed", err)
		return false
	}
	k.recovered()
	k.set(epoch, sent)
	k.done.Store(seq)
	k.metrics.bumps.Inc()
	return true
}

func (k *epochKeeper) beat(ctx context.Context) {
	sent := time.Now()
	epoch, lost, err := k.store.BeatCacheEpoch(ctx, k.replica, k.lostAfter)
	if err != nil {
		k.failed(ctx, "reading the cache epoch failed", err)
		return
	}
	k.recovered()
	if lost > 0 {
		// The bump happened in the same statement; counted here, by whoever made it.
		k.metrics.invalidations.WithLabelValues(reasonReplicaLost).Add(float64(lost))
		k.metrics.bumps.Inc()
		k.logger.WarnContext(ctx, "ledger replicas lost, balance cache epoch bumped", "replicas", lost, "epoch", epoch)
	}
	k.observe(epoch, sent)
}

func (k *epochKeeper) failed(ctx context.Context, msg string, err error) {
	if ctx.Err() != nil {
		return
	}
	if !k.failing.Swap(true) {
		k.logger.WarnContext(ctx, msg+"; Authorize reads PostgreSQL until it succeeds", "err", err)
	}
}

func (k *epochKeeper) recovered() {
	if k.failing.Swap(false) {
		k.logger.Info("cache epoch readable again")
	}
}

// leave ends this replica's part: a pending bump is made first; if it cannot be, the replica
// stays registered so that the others retire its entries when it is seen lost.
func (k *epochKeeper) leave(ctx context.Context) {
	if k.requested.Load() != k.done.Load() && !k.bump(ctx) {
		return
	}
	if err := k.store.LeaveCacheEpoch(ctx, k.replica); err != nil {
		k.logger.WarnContext(ctx, "leaving the cache epoch failed", "err", err)
	}
}
