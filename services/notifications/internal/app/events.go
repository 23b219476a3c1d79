package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
)

// EventStore is the state the follower reads and advances.
type EventStore interface {
	Cursor(ctx context.Context) (string, error)
	UpdateOrgMembers(ctx context.Context, from string, events []notify.LedgerEvent, change store.MembersChange) (store.ApplyResult, error)
}

// Events is the ledger's stream of committed balance events.
type Events interface {
	// Watch streams the events after the position from (a cursor; see Ledger.Watch), until ctx
	// ends.
	Watch(ctx context.Context, from string) (EventStream, error)
}

// EventStream yields events in sequence order; an undecodable event is an error.
type EventStream interface {
	Recv() (notify.LedgerEvent, error)
}

// Lease elects the single follower. Acquire blocks until this replica holds the lease (or ctx
// ends) and returns a context that is cancelled when the lease is lost, and a release function.
type Lease interface {
	Acquire(ctx context.Context) (held context.Context, release func(), err error)
}

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	Ledger Events
	Store  EventStore
	Lease  Lease
	Logger *slog.Logger
	// MaxBatch bounds the events applied in one transaction.
	MaxBatch int
	// RetryDelay is the pause after the stream or a batch failed.
	RetryDelay time.Duration
	// Queued is called after a batch queued emails (to wake the sender); optional.
	Queued func()
	// Applied exports how far the stream is applied, per shard; optional.
	Applied *Applied
}

// Follower follows the ledger's balance events from the cursor stored in PostgreSQL and turns
// them into alert state changes and queued emails (notify.ApplyEvents, applied per batch with
// its emails and the cursor advance in one transaction by store.UpdateOrgMembers).
//
// One replica follows at a time, elected with a lease; the cursor check in UpdateOrgMembers
// keeps two followers safe should a lease ever be lost mid-batch.
type Follower struct {
	cfg FollowerConfig
}

// NewFollower checks cfg and returns a Follower.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	if cfg.Ledger == nil || cfg.Store == nil || cfg.Lease == nil || cfg.Logger == nil {
		return nil, errors.New("app: follower needs a ledger, a store, a lease and a logger")
	}
	if cfg.MaxBatch < 1 || cfg.RetryDelay <= 0 {
		return nil, errors.New("app: follower max batch and retry delay must be positive")
	}
	if cfg.Queued == nil {
		cfg.Queued = func() {}
	}
	return &Follower{cfg: cfg}, nil
}

// Run follows the event stream while holding the lease, until ctx is done.
func (f *Follower) Run(ctx context.Context) error {
	for {
		held, release, err := f.cfg.Lease.Acquire(ctx)
		if err == nil {
			f.cfg.Logger.InfoContext(ctx, "evaluator lease acquired")
			err = f.follow(held)
			release()
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, notify.ErrCursorMoved) {
			f.cfg.Logger.InfoContext(ctx, "event cursor moved by another evaluator, resuming from it", "err", err)
		} else {
			f.cfg.Logger.WarnContext(ctx, "event stream interrupted, resuming", "err", err)
		}
		t := time.NewTimer(f.cfg.RetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

type received struct {
	event notify.LedgerEvent
	err   error
}

// follow streams events after the stored cursor and applies them in batches until ctx ends or
// something fails.
func (f *Follower) follow(ctx context.Context) error {
	cursor, err := f.cfg.Store.Cursor(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := f.cfg.Ledger.Watch(ctx, cursor)
	if err != nil {
		return fmt.Errorf("watching ledger events: %w", err)
	}
	events := make(chan received, f.cfg.MaxBatch)
	go receive(ctx, stream, events)
	f.cfg.Logger.InfoContext(ctx, "following ledger events", "after", cursor)
	for {
		batch, streamErr, err := f.next(ctx, events)
		if err != nil {
			return err
		}
		res, err := f.cfg.Store.UpdateOrgMembers(ctx, cursor, batch, notify.ApplyEvents)
		if err != nil {
			return err
		}
		cursor = res.Cursor
		f.cfg.Applied.observe(batch)
		if res.Queued > 0 {
			f.cfg.Logger.InfoContext(ctx, "ledger events queued emails", "events", len(batch), "emails", res.Queued, "cursor", cursor)
			f.cfg.Queued()
		}
		if streamErr != nil {
			return streamErr
		}
	}
}

// receive forwards the stream's events to events until the first error, which it forwards too.
func receive(ctx context.Context, stream EventStream, events chan<- received) {
	for {
		var r received
		r.event, r.err = stream.Recv()
		if r.err != nil {
			r.err = fmt.Errorf("receiving ledger events: %w", r.err)
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
}

// next waits for the next event and returns it with those already received, up to MaxBatch.
// streamErr is the stream's error after them: apply the batch, then return it.
func (f *Follower) next(ctx context.Context, events <-chan received) (batch []notify.LedgerEvent, streamErr, err error) {
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case r := <-events:
		if r.err != nil {
			return nil, nil, r.err
		}
		batch = append(batch, r.event)
	}
	for len(batch) < f.cfg.MaxBatch {
		select {
		case r := <-events:
			if r.err != nil {
				return batch, r.err, nil
			}
			batch = append(batch, r.event)
		default:
			return batch, nil, nil
		}
	}
	return batch, nil, nil
}
