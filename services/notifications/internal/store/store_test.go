package store_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
	"github.com/tallyhq/tally/services/notifications/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newStore(t *testing.T) *store.Store {
	t.Helper()
	pool, err := pg.Connect(t.Context(), testenv.PostgresURL(t), "notifications", 20)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(t.Context(), pool, "notifications", migrations.FS))
	st, err := store.New(pool)
	require.NoError(t, err)
	return st
}

// Concurrent senders (as on several replicas) claim with SKIP LOCKED: every email is handed to
// exactly one of them, once.
func TestDeliverNextHandsEachEmailToOneSender(t *testing.T) {
	st := newStore(t)
	const members = 40
	for i := range members {
		_, _, err := st.EnsureSettings(t.Context(), store.Member{OrgID: "acme", MemberID: fmt.Sprintf("admin-%02d", i), IsAdmin: true, AccountEmail: fmt.Sprintf("a%d@example.com", i)})
		require.NoError(t, err)
	}
	n, err := st.QueueRentalSuspended(t.Context(), "acme", "gpu-1", "suspension-1", "")
	require.NoError(t, err)
	require.Equal(t, members, n)
	n, err = st.QueueRentalSuspended(t.Context(), "acme", "gpu-1", "suspension-1", "")
	require.NoError(t, err)
	require.Zero(t, n, "the same key queues nothing twice")

	var mu sync.Mutex
	handed := map[string]int{}
	deliver := func(_ context.Context, d notify.Delivery) notify.Attempt {
		mu.Lock()
		handed[d.ID]++
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // hold the claim while the others look
		return notify.Attempt{MessageID: d.ID + "@test"}
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				claimed, err := st.DeliverNext(t.Context(), time.Now(), deliver)
				if err != nil {
					t.Error(err)
					return
				}
				if !claimed {
					return
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, handed, members)
	for id, c := range handed {
		require.Equal(t, 1, c, "email %s", id)
	}
	sent, err := st.ListDeliveries(t.Context(), notify.DeliveryFilter{OrgID: "acme", Status: notify.StatusSent, Limit: 100})
	require.NoError(t, err)
	require.Len(t, sent, members)
}

// A failed attempt is rescheduled, not lost; a given-up email is not claimed again.
func TestDeliverNextRecordsRetriesAndFailures(t *testing.T) {
	st := newStore(t)
	_, _, err := st.EnsureSettings(t.Context(), store.Member{OrgID: "acme", MemberID: "admin", IsAdmin: true, AccountEmail: "a@example.com"})
	require.NoError(t, err)
	_, err = st.QueueRentalSuspended(t.Context(), "acme", "gpu-1", "k", "")
	require.NoError(t, err)

	now := time.Now()
	retryAt := now.Add(time.Hour)
	claimed, err := st.DeliverNext(t.Context(), now, func(context.Context, notify.Delivery) notify.Attempt {
		return notify.Attempt{MessageID: "m", Err: fmt.Errorf("421 try later"), RetryAt: retryAt}
	})
	require.NoError(t, err)
	require.True(t, claimed)
	claimed, err = st.DeliverNext(t.Context(), now.Add(time.Minute), func(context.Context, notify.Delivery) notify.Attempt {
		t.Fatal("not due yet")
		return notify.Attempt{}
	})
	require.NoError(t, err)
	require.False(t, claimed)
	claimed, err = st.DeliverNext(t.Context(), retryAt.Add(time.Second), func(_ context.Context, d notify.Delivery) notify.Attempt {
		require.Equal(t, 1, d.Attempts)
		return notify.Attempt{MessageID: "m", Err: fmt.Errorf("550 no such user"), GiveUp: true}
	})
	require.NoError(t, err)
	require.True(t, claimed)
	claimed, err = st.DeliverNext(t.Context(), retryAt.Add(time.Hour), func(context.Context, notify.Delivery) notify.Attempt {
		t.Fatal("a failed email is not retried")
		return notify.Attempt{}
	})
	require.NoError(t, err)
	require.False(t, claimed)
	ds, err := st.ListDeliveries(t.Context(), notify.DeliveryFilter{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, notify.StatusFailed, ds[0].Status)
	require.Equal(t, 2, ds[0].Attempts)
	require.Equal(t, "550 no such user", ds[0].LastError)
}
