package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// Watcher follows the ledger's balance events after a cursor (pkg/ledgerclient), sharded or not.
type Watcher interface {
	WatchFrom(ctx context.Context, cursor string) (*ledgerclient.Stream, error)
}

var _ Watcher = (*ledgerclient.Client)(nil)

// triggerRules is the recharge trigger's memory: the enabled rules (reloaded every
// Config.RuleRefresh, and at once after a rule is saved on this replica), and the state of each
// rule as the trigger's last claim found it. Events that cannot change a rule (an armed rule
// above its threshold, a fired one below it, an organization without an enabled rule) are passed
// over without the database. A state is only kept while the watch is unbroken: every event that
// can change it then goes through this trigger, which sees the result.
type triggerRules struct {
	mu     sync.Mutex
	rules  map[string]payment.RuleTrigger
	states map[string]payment.RuleState
	loaded time.Time
	stale  bool
}

func newTriggerRules() *triggerRules {
	return &triggerRules{states: map[string]payment.RuleState{}, stale: true}
}

// changed forgets what is known of org's rule and has the rules reloaded.
func (t *triggerRules) changed(org string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.states, org)
	t.stale = true
}

// restart forgets every state: the watch starts over from the shared cursor, and the events
// other replicas applied meanwhile were not seen here.
func (t *triggerRules) restart() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.states)
	t.stale = true
}

// refresh reloads the enabled rules when they are stale or older than every; the states of rules
// changed meanwhile are forgotten.
func (t *triggerRules) refresh(ctx context.Context, st *store.Store, now time.Time, every time.Duration) error {
	t.mu.Lock()
	due := t.stale || now.Sub(t.loaded) >= every
	t.mu.Unlock()
	if !due {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	rules, err := st.EnabledRules(cctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for org := range t.states {
		if r, ok := rules[org]; !ok || !r.UpdatedAt.Equal(t.rules[org].UpdatedAt) {
			delete(t.states, org)
		}
	}
	t.rules, t.loaded, t.stale = rules, now, false
	return nil
}

// mayChange reports whether ev may change its organization's rule (see payment.MayChange).
func (t *triggerRules) mayChange(ev ledgerclient.Event) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.rules[ev.OrgID]
	if !ok {
		return false
	}
	state, known := t.states[ev.OrgID]
	return payment.MayChange(r, state, known, ev.Currency, ev.Available)
}

// saw records the state a claim left org's rule in.
func (t *triggerRules) saw(org string, state payment.RuleState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.rules[org]; ok {
		t.states[org] = state
	}
}

// eventShard is the shard ev was committed on (a ledger that names none has one, SingleShard).
func eventShard(ev ledgerclient.Event) string {
	if ev.Shard == "" {
		return payment.SingleShard
	}
	return ev.Shard
}

// ObserveBalance applies one ledger event to its organization's rule: the claim of a recharge,
// exactly once per fall below the threshold whichever replica sees the event first (the rule's row
// lock and the last sequence applied of the event's shard), then the charge, outside the claim's
// transaction.
func (a *App) ObserveBalance(ctx context.Context, ev ledgerclient.Event) error {
	decide := func(r payment.RechargeRule, hasMethod bool) payment.RechargeDecision {
		if ev.Currency != r.Currency {
			return payment.RechargeDecision{Action: payment.RechargeNone}
		}
		return payment.DecideRecharge(r, hasMethod, ev.Seq, ev.Available, a.cfg.TopUpMin)
	}
	shard := eventShard(ev)
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	c, err := a.store.ApplyBalance(cctx, store.BalanceEvent{OrgID: ev.OrgID, Shard: shard, Seq: ev.Seq}, decide, a.now().Add(a.cfg.Lease))
	cancel()
	if err != nil || !c.Found {
		return err
	}
	a.rules.saw(ev.OrgID, c.State)
	if !c.Fired {
		return nil
	}
	p := c.Payment
	a.logger.InfoContext(ctx, "auto-recharge claimed", "org_id", p.OrgID, "payment_id", p.ID, "amount", p.Amount.String(),
		"shard", shard, "seq", ev.Seq)
	a.metrics.recharge("claimed")
	if err := a.charge(ctx, p); err != nil {
		// Claimed: the retry worker sends the same charge again after the backoff.
		a.logger.WarnContext(ctx, "auto-recharge left for the retry worker", "payment_id", p.ID, "err", err)
	}
	return nil
}

// RunRechargeTrigger follows the ledger's events from the shared cursor until ctx is done and
// applies each to its organization's rule; a broken stream is opened again after retry. Every
// replica runs it: the rule's row lock and last sequences make one of them claim each crossing.
func (a *App) RunRechargeTrigger(ctx context.Context, retry time.Duration) error {
	if a.cfg.Watcher == nil {
		return nil
	}
	for ctx.Err() == nil {
		err := a.followEvents(ctx)
		if ctx.Err() != nil {
			break
		}
		a.logger.WarnContext(ctx, "auto-recharge trigger lost the ledger's events, reconnecting", "err", err)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// received is one answer of the ledger's event stream.
type received struct {
	ev  ledgerclient.Event
	err error
}

// followEvents watches the ledger from the shared cursor and applies its events in order. The
// cursor advances once per batch: when no further event is already waiting, or after
// Config.TriggerBatch events. A failure or a crash replays at most a batch, which the rules'
// last sequences make a no-op.
func (a *App) followEvents(ctx context.Context) error {
	a.rules.restart()
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	after, err := a.store.RechargeCursor(cctx)
	cancel()
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	stream, err := a.cfg.Watcher.WatchFrom(sctx, after)
	if err != nil {
		return err
	}
	events := make(chan received, a.cfg.TriggerBatch)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		for {
			ev, err := stream.Recv()
			select {
			case events <- received{ev, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	return a.applyEvents(ctx, events)
}

// applyEvents applies the received events and advances the cursor after each batch.
func (a *App) applyEvents(ctx context.Context, events <-chan received) error {
	pending, n := payment.LedgerCursor{}, 0
	for {
		var r received
		select {
		case r = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := a.applyEvent(ctx, r.ev, pending); err != nil {
			return err
		}
		if n++; n < a.cfg.TriggerBatch && len(events) > 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, recordTimeout)
		err := a.store.AdvanceRechargeCursor(cctx, pending)
		cancel()
		if err != nil {
			return err
		}
		pending, n = payment.LedgerCursor{}, 0
	}
}

// applyEvent applies ev when it may change its organization's rule, and moves pending past it.
func (a *App) applyEvent(ctx context.Context, ev ledgerclient.Event, pending payment.LedgerCursor) error {
	if err := a.rules.refresh(ctx, a.store, a.now(), a.cfg.RuleRefresh); err != nil {
		return err
	}
	// A failed claim wrote nothing: the event is read again from the cursor (an event applied
	// before is a no-op, whichever replica applied it).
	if a.rules.mayChange(ev) {
		if err := a.ObserveBalance(ctx, ev); err != nil {
			return fmt.Errorf("applying event %s:%d: %w", eventShard(ev), ev.Seq, err)
		}
	}
	// A ledger that sends no cursor has a single shard: the event's sequence is its position.
	at := payment.LedgerCursor{eventShard(ev): ev.Seq}
	if ev.Cursor != "" {
		var err error
		if at, err = payment.ParseLedgerCursor(ev.Cursor); err != nil {
			return fmt.Errorf("event %s:%d: %w", eventShard(ev), ev.Seq, err)
		}
	}
	for shard, seq := range at {
		pending[shard] = max(pending[shard], seq)
	}
	return nil
}
