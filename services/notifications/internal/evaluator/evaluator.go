// Package evaluator follows the ledger's balance events from a cursor stored in PostgreSQL and
// turns them into alert state changes and queued emails (see store.ApplyEvents, which applies
// each batch of events, their emails and the cursor advance in one transaction). It also queues
// the "credits expire soon" reminders.
//
// One replica consumes at a time, elected with a PostgreSQL advisory lock (Lease); the cursor
// check in ApplyEvents keeps two consumers safe should a lease ever be lost mid-batch.
package evaluator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	moneypb "google.golang.org/genproto/googleapis/type/money"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
)

// EventStore is the state the evaluator reads and advances.
type EventStore interface {
	Cursor(ctx context.Context) (int64, error)
	ApplyEvents(ctx context.Context, from int64, events []notify.LedgerEvent) (store.ApplyResult, error)
}

// Lease elects the single consumer. Acquire blocks until this replica holds the lease (or ctx
// ends) and returns a context that is cancelled when the lease is lost, and a release function.
type Lease interface {
	Acquire(ctx context.Context) (held context.Context, release func(), err error)
}

// Config configures an Evaluator.
type Config struct {
	Ledger ledgerv1.LedgerServiceClient
	Store  EventStore
	Lease  Lease
	Logger *slog.Logger
	// MaxBatch bounds the events applied in one transaction.
	MaxBatch int
	// RetryDelay is the pause after the stream or a batch failed.
	RetryDelay time.Duration
	// Queued is called after a batch queued emails (to wake the sender); optional.
	Queued func()
	// Cursor exports the last applied sequence; optional.
	Cursor prometheus.Gauge
}

// Evaluator consumes the ledger's event stream.
type Evaluator struct {
	cfg Config
}

// New checks cfg and returns an Evaluator.
func New(cfg Config) (*Evaluator, error) {
	if cfg.Ledger == nil || cfg.Store == nil || cfg.Lease == nil || cfg.Logger == nil {
		return nil, errors.New("evaluator: ledger, store, lease and logger are required")
	}
	if cfg.MaxBatch < 1 || cfg.RetryDelay <= 0 {
		return nil, errors.New("evaluator: max batch and retry delay must be positive")
	}
	return &Evaluator{cfg: cfg}, nil
}

// Run follows the event stream while holding the lease, until ctx is done.
func (e *Evaluator) Run(ctx context.Context) error {
	for {
		held, release, err := e.cfg.Lease.Acquire(ctx)
		if err == nil {
			e.cfg.Logger.Info("evaluator lease acquired")
			err = e.follow(held)
			release()
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, notify.ErrCursorMoved) {
			e.cfg.Logger.Info("event cursor moved by another evaluator, resuming from it", "err", err)
		} else {
			e.cfg.Logger.Warn("event stream interrupted, resuming", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.cfg.RetryDelay):
		}
	}
}

type received struct {
	event notify.LedgerEvent
	err   error
}

// follow streams events after the stored cursor and applies them in batches until ctx ends or
// something fails.
func (e *Evaluator) follow(ctx context.Context) error {
	cursor, err := e.cfg.Store.Cursor(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := e.cfg.Ledger.WatchEvents(ctx, &ledgerv1.WatchEventsRequest{AfterSequence: cursor})
	if err != nil {
		return fmt.Errorf("watching ledger events: %w", err)
	}
	events := make(chan received, e.cfg.MaxBatch)
	go func() {
		for {
			resp, err := stream.Recv()
			var r received
			if err != nil {
				r.err = fmt.Errorf("receiving ledger events: %w", err)
			} else if r.event, r.err = FromProto(resp.GetEvent()); r.err != nil {
				r.err = fmt.Errorf("ledger event: %w", r.err)
			}
			select {
			case events <- r:
			case <-ctx.Done():
				return
			}
			if r.err != nil {
				return
			}
		}
	}()
	e.cfg.Logger.Info("following ledger events", "after_sequence", cursor)
	for {
		var batch []notify.LedgerEvent
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-events:
			if r.err != nil {
				return r.err
			}
			batch = append(batch, r.event)
		}
		var streamErr error // applied what arrived before it, then returned
	drain:
		for len(batch) < e.cfg.MaxBatch {
			select {
			case r := <-events:
				if r.err != nil {
					streamErr = r.err
					break drain
				}
				batch = append(batch, r.event)
			default:
				break drain
			}
		}
		res, err := e.cfg.Store.ApplyEvents(ctx, cursor, batch)
		if err != nil {
			return err
		}
		cursor = res.Cursor
		if e.cfg.Cursor != nil {
			e.cfg.Cursor.Set(float64(cursor))
		}
		if res.Queued > 0 {
			e.cfg.Logger.Info("ledger events queued emails", "events", len(batch), "emails", res.Queued, "cursor", cursor)
			if e.cfg.Queued != nil {
				e.cfg.Queued()
			}
		}
		if streamErr != nil {
			return streamErr
		}
	}
}

var eventKinds = map[ledgerv1.EventKind]notify.EventKind{
	ledgerv1.EventKind_EVENT_KIND_CREDIT:        "credit",
	ledgerv1.EventKind_EVENT_KIND_DEBIT:         "debit",
	ledgerv1.EventKind_EVENT_KIND_ADJUSTMENT:    "adjustment",
	ledgerv1.EventKind_EVENT_KIND_EXPIRY:        "expiry",
	ledgerv1.EventKind_EVENT_KIND_CAPTURE:       "capture",
	ledgerv1.EventKind_EVENT_KIND_HOLD_PLACED:   "hold_placed",
	ledgerv1.EventKind_EVENT_KIND_HOLD_RELEASED: "hold_released",
	ledgerv1.EventKind_EVENT_KIND_HOLD_EXPIRED:  "hold_expired",
}

// FromProto converts a ledger event.
func FromProto(p *ledgerv1.BalanceEvent) (notify.LedgerEvent, error) {
	if p == nil || p.GetSequence() <= 0 || p.GetOrgId() == "" {
		return notify.LedgerEvent{}, errors.New("event without sequence or organization")
	}
	bal, err := money.FromProto(p.GetBalance())
	if err != nil {
		return notify.LedgerEvent{}, fmt.Errorf("event %d balance: %w", p.GetSequence(), err)
	}
	e := notify.LedgerEvent{
		Seq:           p.GetSequence(),
		OrgID:         p.GetOrgId(),
		Kind:          eventKinds[p.GetKind()],
		TransactionID: p.GetTransactionId(),
		Currency:      bal.Currency,
		Balance:       bal.Nanos,
	}
	if e.Kind == "" {
		e.Kind = notify.EventKind(p.GetKind().String())
	}
	if p.GetKind() == ledgerv1.EventKind_EVENT_KIND_CREDIT && p.GetCreditSource() == ledgerv1.CreditSource_CREDIT_SOURCE_GRANT {
		e.Kind = notify.EventGrant // free credits from ops: no "payment succeeded" email
	}
	if e.Available, err = optional(p.GetAvailable()); err != nil {
		return notify.LedgerEvent{}, fmt.Errorf("event %d available: %w", p.GetSequence(), err)
	}
	if e.Amount, err = optional(p.GetAmount()); err != nil {
		return notify.LedgerEvent{}, fmt.Errorf("event %d amount: %w", p.GetSequence(), err)
	}
	if p.GetExpiresAt() != nil {
		e.ExpiresAt = p.GetExpiresAt().AsTime()
	}
	if p.GetOccurredAt() != nil {
		e.OccurredAt = p.GetOccurredAt().AsTime()
	}
	return e, nil
}

func optional(m *moneypb.Money) (money.Nanos, error) {
	if m == nil {
		return 0, nil
	}
	v, err := money.FromProto(m)
	return v.Nanos, err
}
