package metering

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tallyhq/tally/pkg/outbox"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
	"github.com/tallyhq/tally/services/instances-metering/internal/store"
)

// Run runs the scheduler, the event sequencer and (when a Notifier is set) the delivery of
// suspension notices until ctx is done.
func (m *Meter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { m.sequenceEvents(ctx) })
	if m.cfg.Notifier != nil {
		wg.Go(func() { m.deliverNotices(ctx) })
	}
	m.schedule(ctx)
	wg.Wait()
	return nil
}

// schedule charges due rentals, then sleeps until the next period boundary, a local start, or
// the poll interval (rentals started on other replicas), whichever comes first. Boundaries are
// read from the database, so a restarted or late scheduler catches up every missed period.
func (m *Meter) schedule(ctx context.Context) {
	for ctx.Err() == nil {
		wait := m.cfg.PollInterval
		err := m.ChargeDueOnce(ctx)
		if err != nil && ctx.Err() == nil {
			m.logger.Warn("charging due rentals failed", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if next, ok, nerr := m.store.NextDue(ctx); nerr != nil {
			if ctx.Err() == nil {
				m.logger.Warn("reading the next period boundary failed", "err", nerr)
			}
		} else if ok {
			until := next.Sub(m.cfg.Now())
			switch {
			case until > 0:
				wait = min(wait, until)
			case err == nil:
				// Became due during the pass: go again at once. After a failure, wait a poll
				// interval so a ledger outage is not hammered.
				wait = 0
			}
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-m.kick:
		}
		t.Stop()
	}
}

// ChargeDueOnce charges every rental due now: Workers transactions at a time each claim a batch
// of due rentals no other transaction holds, until none is left. Per-rental failures are logged
// and retried at the next pass; the error reports a failed batch.
func (m *Meter) ChargeDueOnce(ctx context.Context) error {
	now := m.now()
	var wg sync.WaitGroup
	errs := make([]error, m.cfg.Workers)
	for w := range m.cfg.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n, err := m.store.ChargeDue(ctx, now, m.cfg.BatchSize, m.chargeBatch(now))
				if err != nil {
					errs[w] = err
					return
				}
				if n > 0 {
					signal(m.sequence)
				}
				if n < m.cfg.BatchSize {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// chargeBatch charges locked rentals concurrently (the ledger group-commits concurrent debits).
func (m *Meter) chargeBatch(now time.Time) store.BatchChargeFunc {
	return func(ctx context.Context, rs []rental.Rental) []rental.Outcome {
		outs := make([]rental.Outcome, len(rs))
		sem := make(chan struct{}, m.cfg.Concurrency)
		var wg sync.WaitGroup
		failed := 0
		var mu sync.Mutex
		for i, r := range rs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				out, err := m.charge(ctx, r, now)
				outs[i] = out
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					failed++
					first := failed == 1
					mu.Unlock()
					if first {
						m.logger.Warn("charging a rental failed; retried at the next pass", "instance_id", r.InstanceID, "err", err)
					}
				}
			})
		}
		wg.Wait()
		if failed > 1 {
			m.logger.Warn("charging rentals failed; retried at the next pass", "failed", failed, "batch", len(rs))
		}
		charged := 0
		for _, o := range outs {
			charged += len(o.Charges)
		}
		if charged > 0 {
			m.logger.Debug("charge batch done", "rentals", len(rs), "periods", charged)
		}
		return outs
	}
}

// deliverNotices sends queued suspension notices to the notifications service, retrying with
// backoff until delivered. The notifications service deduplicates by idempotency key, so a
// notice sent twice (a crash before recording it) is one email.
func (m *Meter) deliverNotices(ctx context.Context) {
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := m.store.DeliverNotices(ctx, m.now(), 50, func(ctx context.Context, n store.Notice) error {
			ctx, cancel := context.WithTimeout(ctx, m.cfg.LedgerTimeout)
			defer cancel()
			return m.cfg.Notifier.RentalSuspended(ctx, n.OrgID, n.InstanceID, "rental-suspended:"+n.InstanceID, n.Reason)
		}, noticeBackoff)
		if err != nil && ctx.Err() == nil {
			m.logger.Warn("delivering suspension notices failed", "err", err)
		}
	}
}

// noticeBackoff doubles from 1s to at most 10 minutes.
func noticeBackoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 10)
	return min(d, 10*time.Minute)
}

// sequenceEvents gives committed events their sequence numbers (see store.SequenceEvents) as
// soon as a local transaction commits some, and every EventPollInterval for other replicas'.
func (m *Meter) sequenceEvents(ctx context.Context) {
	const page = 5000
	for {
		n, err := m.store.SequenceEvents(ctx, page)
		if err != nil && ctx.Err() == nil {
			m.logger.Warn("sequencing events failed", "err", err)
		}
		if n > 0 {
			m.wake.Notify()
		}
		if n == page {
			continue
		}
		t := time.NewTimer(m.cfg.EventPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.sequence:
		case <-t.C:
		}
		t.Stop()
	}
}

// WatchEvents calls send for every event after afterSeq, in sequence order, until ctx is done or
// send fails. It reads the outbox, so a reconnect with the last seen sequence loses and repeats
// nothing.
func (m *Meter) WatchEvents(ctx context.Context, afterSeq int64, send func(rental.Event) error) error {
	return outbox.Follow[rental.Event]{
		Fetch: m.store.Events,
		Seq:   func(e rental.Event) int64 { return e.Seq },
		Wake:  m.wake,
		Poll:  m.cfg.EventPollInterval,
	}.Run(ctx, afterSeq, send)
}
