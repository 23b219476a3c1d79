// Package outbox follows a transactional outbox: a table of events with growing sequence numbers,
// read page by page after a cursor, woken early by the local writer and polled for the others.
package outbox

import (
	"context"
	"sync"
	"time"
)

// Broadcast wakes every waiter at once; writers call Notify after each commit that added events.
type Broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewBroadcast returns a Broadcast with no waiters.
func NewBroadcast() *Broadcast { return &Broadcast{ch: make(chan struct{})} }

// Wait returns a channel closed by the next Notify.
func (b *Broadcast) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

// Notify wakes every current waiter.
func (b *Broadcast) Notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// Follow is one follower of an outbox of events E.
type Follow[E any] struct {
	// Fetch returns up to limit events after the sequence number, in sequence order.
	Fetch func(ctx context.Context, after int64, limit int) ([]E, error)
	// Seq is the sequence number of an event.
	Seq func(E) int64
	// Wake, when set, ends a wait early (events committed by this process).
	Wake *Broadcast
	// Poll bounds how late events committed elsewhere are seen.
	Poll time.Duration
	// Page is the number of events read at once (default 500).
	Page int
}

// Run calls send for every event after after, in sequence order, until ctx is done (returning
// ctx.Err()) or Fetch or send fails. A follower that reconnects with the last sequence it saw
// loses and repeats nothing.
func (f Follow[E]) Run(ctx context.Context, after int64, send func(E) error) error {
	page := f.Page
	if page <= 0 {
		page = 500
	}
	var never chan struct{}
	for {
		var wake <-chan struct{} = never
		if f.Wake != nil {
			wake = f.Wake.Wait() // taken before reading, so a commit in between still wakes us
		}
		events, err := f.Fetch(ctx, after, page)
		if err != nil {
			return err
		}
		for _, e := range events {
			if err := send(e); err != nil {
				return err
			}
			after = f.Seq(e)
		}
		if len(events) == page {
			continue
		}
		t := time.NewTimer(f.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}
