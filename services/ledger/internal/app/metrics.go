package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/services/ledger/internal/committer"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// Where Authorize took its answer from, and why (bounded label values).
const (
	sourceCache = "cache"
	sourceDB    = "db"

	whyFresh            = "fresh"             // a Redis entry stamped with the current epoch
	whyPending          = "pending"           // this replica's own committed state, not yet in Redis
	whyNoCache          = "no_cache"          // REDIS_URL is not set
	whyEpochUnknown     = "epoch_unknown"     // no recent epoch reading, or a bump pending
	whyCacheUnavailable = "cache_unavailable" // Redis failed, timed out, or its breaker is open
	whyMiss             = "miss"              // no entry
	whyStale            = "stale"             // an entry stamped with another epoch
	whyProjectsUnknown  = "projects_unknown"  // a project named, and the fresh entry lacks the project limits
)

// Results of cache updates (bounded label values).
const (
	updateWritten = "written"
	updateFailed  = "failed"
	updateDropped = "dropped"
)

// Results of writes (bounded label values of tally_ledger_debits_total and _credits_total).
const (
	resultCommitted         = "committed"
	resultReplayed          = "replayed"
	resultInsufficientFunds = "insufficient_funds"
	resultRefused           = "refused"
	resultFailed            = "failed"
)

// Kinds of credits (tally_ledger_credits_total).
const (
	creditPayment    = "payment"
	creditGrant      = "grant"
	creditAdjustment = "adjustment"
)

// Balance-cache operations that can fail (tally_ledger_redis_errors_total).
const (
	redisRead  = "read"
	redisWrite = "write"
)

type metrics struct {
	writes
	authorize     *prometheus.CounterVec
	invalidations *prometheus.CounterVec
	bumps         prometheus.Counter
	epoch         prometheus.Gauge
	updates       *prometheus.CounterVec
	queued        prometheus.GaugeFunc
	usageCounted  prometheus.Counter
	usageCursor   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, queued func() float64) (*metrics, error) {
	m := &metrics{
		writes: newWrites(),
		authorize: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ledger_authorize_source_total",
			Help: "Authorize answers by source (cache: Redis or this replica's pending update, db: PostgreSQL) and the reason for it.",
		}, []string{"source", "reason"}),
		invalidations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ledger_cache_invalidations_total",
			Help: "Requests to bump the balance-cache epoch, by reason (several may share one bump).",
		}, []string{"reason"}),
		bumps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_ledger_cache_epoch_bumps_total",
			Help: "Bumps of the balance-cache epoch made by this replica.",
		}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_ledger_cache_epoch",
			Help: "The balance-cache epoch this replica last read.",
		}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ledger_cache_updates_total",
			Help: "Balance-cache entries written to Redis, failed, or dropped by a full updater queue.",
		}, []string{"result"}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tally_ledger_cache_updates_queued",
			Help: "Organizations whose new balance waits in the cache updater's queue.",
		}, queued),
		usageCounted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tally_ledger_usage_events_counted_total",
			Help: "Outbox events this replica's usage follower counted into the daily usage table.",
		}),
		usageCursor: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_ledger_usage_cursor",
			Help: "The last outbox sequence counted in the daily usage table, as this replica last saw it.",
		}),
	}
	for _, l := range [][2]string{{sourceCache, whyFresh}, {sourceCache, whyPending}, {sourceDB, whyNoCache}, {sourceDB, whyEpochUnknown},
		{sourceDB, whyCacheUnavailable}, {sourceDB, whyMiss}, {sourceDB, whyStale}, {sourceDB, whyProjectsUnknown}} {
		m.authorize.WithLabelValues(l[0], l[1])
	}
	for _, r := range []string{reasonStart, reasonRedisServer, reasonWriteFailed, reasonQueueFull, reasonCommitUnknown, reasonReplicaLost, reasonShutdownFailed} {
		m.invalidations.WithLabelValues(r)
	}
	for _, r := range []string{updateWritten, updateFailed, updateDropped} {
		m.updates.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	cs := append([]prometheus.Collector{m.authorize, m.invalidations, m.bumps, m.epoch, m.updates, m.queued, m.usageCounted, m.usageCursor},
		m.collectors()...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering ledger metrics: %w", err)
		}
	}
	return m, nil
}

// writes are the metrics of the write path: debits and credits by result, the amounts moved,
// the group commits, the balance cache's Redis errors and the outbox.
type writes struct {
	debits      *prometheus.CounterVec
	credits     *prometheus.CounterVec
	amount      *prometheus.CounterVec
	batchSize   prometheus.Histogram
	commit      prometheus.Histogram
	queueDepth  prometheus.Gauge
	redisErrors *prometheus.CounterVec
	outboxHead  prometheus.Gauge
	// outboxHeadTime is when the newest event a watcher is sent occurred: the consumers' lag
	// alerts compare it with the occurrence of the last event they applied (lag in time: the
	// sequences have gaps).
	outboxHeadTime prometheus.Gauge
	usageLag       prometheus.Gauge
}

func newWrites() writes {
	w := writes{
		debits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ledger_debits_total",
			Help: "Debit requests by result: committed, replayed (idempotency key seen before), insufficient_funds, refused (invalid, conflicting), failed (outage, shutdown, deadline).",
		}, []string{"result"}),
		credits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ledger_credits_total",
			Help: "Credit and adjustment requests by kind (payment, grant, adjustment) and result (as for debits).",
		}, []string{"kind", "result"}),
		amount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ledger_amount_nanos_total",
			Help: "Nanos moved on organizations' balances by committed (not replayed) API writes, by currency and direction (debit, credit).",
		}, []string{"currency", "direction"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_ledger_commit_batch_size",
			Help:    "Requests per committed group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 … 256 (the default maximum batch)
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tally_ledger_commit_duration_seconds",
			Help:    "Duration of one group-commit transaction (lock, decide, write, commit), whether it committed or failed.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_ledger_commit_queue_depth",
			Help: "API writes submitted to the group committer and not answered yet (queued or in the transaction being committed).",
		}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_ledger_redis_errors_total",
			Help: "Failed balance-cache operations on Redis (errors, timeouts, open breaker) by operation: read, write.",
		}, []string{"op"}),
		outboxHead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_ledger_outbox_head",
			Help: "The newest event (outbox) sequence committed, as this replica last read it.",
		}),
		outboxHeadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_ledger_outbox_head_timestamp_seconds",
			Help: "When the newest outbox event sent to watchers (not a move's marker) occurred, in Unix seconds, as this replica last read it; 0 before the first.",
		}),
		usageLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tally_ledger_usage_lag_events",
			Help: "Committed outbox events not yet counted in the daily usage table (a count, at most 100,000: event sequences are not dense).",
		}),
	}
	for _, r := range []string{resultCommitted, resultReplayed, resultInsufficientFunds, resultRefused, resultFailed} {
		w.debits.WithLabelValues(r)
	}
	for _, k := range []string{creditPayment, creditGrant, creditAdjustment} {
		for _, r := range []string{resultCommitted, resultReplayed, resultRefused, resultFailed} {
			w.credits.WithLabelValues(k, r)
		}
	}
	for _, op := range []string{redisRead, redisWrite} {
		w.redisErrors.WithLabelValues(op)
	}
	return w
}

func (w *writes) collectors() []prometheus.Collector {
	return []prometheus.Collector{w.debits, w.credits, w.amount, w.batchSize, w.commit, w.queueDepth, w.redisErrors, w.outboxHead, w.outboxHeadTime, w.usageLag}
}

// observeWrite counts one API write of req with its result.
func (w *writes) observeWrite(req *ledger.Request, res ledger.Result, err error) {
	result := writeResult(res, err)
	switch req.Op {
	case ledger.OpDebit:
		w.debits.WithLabelValues(result).Inc()
	case ledger.OpCredit:
		kind := creditGrant
		if req.Source == ledger.SourcePayment {
			kind = creditPayment
		}
		w.credits.WithLabelValues(kind, creditResult(result)).Inc()
	case ledger.OpAdjust:
		w.credits.WithLabelValues(creditAdjustment, creditResult(result)).Inc()
	}
	if result != resultCommitted || res.Transaction == nil {
		return
	}
	switch tx := res.Transaction; {
	case tx.Amount < 0:
		w.amount.WithLabelValues(tx.Currency, "debit").Add(-float64(tx.Amount))
	case tx.Amount > 0:
		w.amount.WithLabelValues(tx.Currency, "credit").Add(float64(tx.Amount))
	}
}

// refusals are the ledger's definitive answers about a request (as opposed to failures: an
// outage, a shutdown, the caller's deadline, a bug).
var refusals = []error{ledger.ErrCurrencyMismatch, ledger.ErrIdempotencyConflict, ledger.ErrHoldNotFound,
	ledger.ErrHoldNotActive, ledger.ErrOverflow, ledger.ErrInvalid, ledger.ErrSpendLimitReached}

func writeResult(res ledger.Result, err error) string {
	switch {
	case err == nil && res.Replayed:
		return resultReplayed
	case err == nil:
		return resultCommitted
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return resultInsufficientFunds
	}
	for _, r := range refusals {
		if errors.Is(err, r) {
			return resultRefused
		}
	}
	return resultFailed
}

// creditResult: a credit is never short of funds (an adjustment down may be: a refusal).
func creditResult(result string) string {
	if result == resultInsufficientFunds {
		return resultRefused
	}
	return result
}

// measuredBatches is the committer's Applier with the batch size and commit duration observed.
type measuredBatches struct {
	next committer.Applier
	w    *writes
}

func (b measuredBatches) Apply(ctx context.Context, reqs []*ledger.Request) (ledger.Applied, error) {
	start := time.Now()
	applied, err := b.next.Apply(ctx, reqs)
	b.w.commit.Observe(time.Since(start).Seconds())
	if err == nil {
		b.w.batchSize.Observe(float64(len(reqs)))
	}
	return applied, err
}
