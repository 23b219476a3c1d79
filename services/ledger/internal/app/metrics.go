package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
)

// Results of cache updates (bounded label values).
const (
	updateWritten = "written"
	updateFailed  = "failed"
	updateDropped = "dropped"
)

type metrics struct {
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
		{sourceDB, whyCacheUnavailable}, {sourceDB, whyMiss}, {sourceDB, whyStale}} {
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
	for _, c := range []prometheus.Collector{m.authorize, m.invalidations, m.bumps, m.epoch, m.updates, m.queued, m.usageCounted, m.usageCursor} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering ledger metrics: %w", err)
		}
	}
	return m, nil
}
