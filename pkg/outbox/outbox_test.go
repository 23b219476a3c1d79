package outbox

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memoryOutbox is an outbox table in memory.
type memoryOutbox struct {
	mu     sync.Mutex
	events []int64
}

func (m *memoryOutbox) append(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		m.events = append(m.events, int64(len(m.events)+1))
	}
}

func (m *memoryOutbox) fetch(_ context.Context, after int64, limit int) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for _, e := range m.events {
		if e > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestFollowResumesWithoutGapOrDuplicate(t *testing.T) {
	t.Parallel()
	box := &memoryOutbox{}
	wake := NewBroadcast()
	f := Follow[int64]{Fetch: box.fetch, Seq: func(e int64) int64 { return e }, Wake: wake, Poll: time.Hour, Page: 7}
	box.append(20)
	var seen []int64
	stop := errors.New("disconnect")
	// Disconnect after 15 events, then resume from the last one seen while more are written.
	err := f.Run(t.Context(), 0, func(e int64) error {
		seen = append(seen, e)
		if len(seen) == 15 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	ctx, cancel := context.WithCancel(t.Context())
	// idle is signalled when the resumed follower has read a short page, after which it waits: the events
	// appended then can only reach it through the wake-up (it takes the wake-up before reading).
	idle := make(chan struct{}, 1)
	f.Fetch = func(ctx context.Context, after int64, limit int) ([]int64, error) {
		out, err := box.fetch(ctx, after, limit)
		if err == nil && len(out) < limit {
			select {
			case idle <- struct{}{}:
			default:
			}
		}
		return out, err
	}
	done := make(chan error, 1)
	go func() {
		done <- f.Run(ctx, seen[len(seen)-1], func(e int64) error {
			seen = append(seen, e)
			if len(seen) == 30 {
				cancel()
			}
			return nil
		})
	}()
	select {
	case <-idle:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the resumed follower never caught up")
	}
	box.append(10)
	wake.Notify() // the poll interval is an hour: only the wake-up can deliver these
	require.ErrorIs(t, <-done, context.Canceled)
	for i, e := range seen {
		require.Equal(t, int64(i+1), e)
	}
}
