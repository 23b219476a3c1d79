package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/pkg/outbox"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
	"github.com/tallyhq/tally/services/instances-metering/internal/store"
)

// Run runs the scheduler, the event sequencer and (when a Notifier is set) the delivery of
// suspension notices until ctx is done.
func (m *Meter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { m.sequenceEvents(ctx) })
	background := []func(context.Context) error{m.sampleRentals}
	if m.cfg.Notifier != nil {
		background = append(background, m.deliverNotices)
	}
	for _, run := range background {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				m.logger.ErrorContext(ctx, "a background loop did not start", "err", err)
			}
		})
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
			m.logger.WarnContext(ctx, "charging due rentals failed", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if next, ok, nerr := m.store.NextDue(ctx); nerr != nil {
			if ctx.Err() == nil {
				m.logger.WarnContext(ctx, "reading the next period boundary failed", "err", nerr)
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

// ChargeDueOnce charges every rental due now: Workers at a time, each claims a batch of due
// rentals that no live claim holds (committed), charges them through the ledger with no
// transaction open, and records the outcomes with the claims released, until none is left.
// Per-rental failures are logged and retried a poll interval later; the error reports them and
// failed batches.
func (m *Meter) ChargeDueOnce(ctx context.Context) error {
	now := m.now()
	var wg sync.WaitGroup
	errs := make([]error, m.cfg.Workers)
	for w := range m.cfg.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n, err := m.chargeBatch(ctx, now)
				if err != nil {
					errs[w] = err
					if !errors.Is(err, errChargesFailed) {
						return
					}
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

// chargeBatch claims up to BatchSize due rentals, charges them concurrently (the ledger
// group-commits concurrent debits) and records the outcomes. It returns how many it claimed.
func (m *Meter) chargeBatch(ctx context.Context, now time.Time) (int, error) {
	c := m.claim(now)
	rs, err := m.store.ClaimDue(ctx, m.cfg.BatchSize, c)
	if err != nil || len(rs) == 0 {
		return 0, err
	}
	cctx, cancel := m.callContext(ctx)
	defer cancel()
	// A stop of the service ends the calls; what they did is still recorded.
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	records := make([]store.Record, len(rs))
	sem := make(chan struct{}, m.cfg.Concurrency)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i, r := range rs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := m.charge(cctx, r, now)
			records[i] = m.settle(r, out, err, now)
			if err != nil && ctx.Err() == nil && failed.Add(1) == 1 {
				m.logger.WarnContext(ctx, "charging a rental failed; retried at the next pass", "instance_id", r.InstanceID, "err", err)
			}
		})
	}
	wg.Wait()
	recorded, err := m.store.Record(ctx, now, c.Token, records)
	if err != nil {
		// The claims expire and the next claimer replays the debits.
		return 0, fmt.Errorf("recording a charge batch: %w", err)
	}
	charged, lost := 0, 0
	for i, rec := range records {
		if !recorded[i] {
			lost++
			continue
		}
		charged += len(rec.Charges)
	}
	if lost > 0 {
		m.logger.WarnContext(ctx, "claims taken over by another replica before their record", "rentals", lost, "batch", len(rs))
	}
	if charged > 0 || lost < len(rs) {
		signal(m.sequence)
	}
	if charged > 0 {
		m.logger.DebugContext(ctx, "charge batch done", "rentals", len(rs), "periods", charged)
	}
	if n := failed.Load(); n > 0 {
		if n > 1 {
			m.logger.WarnContext(ctx, "charging rentals failed; retried at the next pass", "failed", n, "batch", len(rs))
		}
		return len(rs), fmt.Errorf("%w: %d of %d rentals not charged", errChargesFailed, n, len(rs))
	}
	return len(rs), nil
}

// errChargesFailed reports rentals whose charge failed in a pass (they are retried a poll
// interval later).
var errChargesFailed = errors.New("charges failed")

// deliverNotices sends queued suspension notices to the notifications service, retrying with
// backoff until delivered. The notifications service deduplicates by idempotency key, so a
// notice sent twice (a crash before recording it) is one email.
func (m *Meter) deliverNotices(ctx context.Context) error {
	return loop.Every(ctx, "notice delivery", m.cfg.PollInterval, loop.AfterInterval, loop.Passes(func(ctx context.Context) {
		_, err := m.store.DeliverNotices(ctx, m.now(), 50, m.cfg.ClaimLease, func(ctx context.Context, n store.Notice) error {
			ctx, cancel := context.WithTimeout(ctx, m.cfg.LedgerTimeout)
			defer cancel()
			return m.cfg.Notifier.RentalSuspended(ctx, n.OrgID, n.InstanceID, "rental-suspended:"+n.InstanceID, n.Reason)
		}, noticeBackoff)
		if err != nil && ctx.Err() == nil {
			m.logger.WarnContext(ctx, "delivering suspension notices failed", "err", err)
		}
	}))
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
			m.logger.WarnContext(ctx, "sequencing events failed", "err", err)
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
