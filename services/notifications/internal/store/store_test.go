package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
	"github.com/tallyhq/tally/services/notifications/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// claim is the senders' claim in these tests.
var claim = store.EmailClaim{Owner: "test-sender", Lease: time.Minute}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, _ := newStoreWithPool(t)
	return st
}

func newStoreWithPool(t *testing.T) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	pool, err := pg.Connect(t.Context(), testenv.PostgresURL(t), "notifications", 20)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(t.Context(), pool, "notifications", migrations.FS))
	st, err := store.New(pool)
	require.NoError(t, err)
	return st, pool
}

// deliverNext is the send loop's claim → call → record over the store, with deliver as the call.
func deliverNext(ctx context.Context, st *store.Store, now time.Time, c store.EmailClaim, deliver func(context.Context, notify.Delivery) notify.Attempt) (bool, error) {
	claimed, ok, err := st.ClaimEmail(ctx, now, c)
	if err != nil || !ok {
		return false, err
	}
	a := deliver(ctx, claimed.Delivery)
	return true, st.RecordAttempt(context.WithoutCancel(ctx), claimed, a)
}

// queueRental queues a rental-suspended notice for org's opted-in members.
func queueRental(t *testing.T, st *store.Store, org, key string) (int, error) {
	t.Helper()
	return st.QueueRentalSuspended(t.Context(), org, func(members []notify.Settings, bal *notify.Balance) []notify.Email {
		return notify.RentalSuspendedEmails(notify.RentalSuspended{OrgID: org, InstanceID: "gpu-1", Key: key}, members, bal, time.Now())
	})
}

// Concurrent senders (as on several replicas) claim with SKIP LOCKED: every email is handed to
// exactly one of them, once.
func TestDeliverNextHandsEachEmailToOneSender(t *testing.T) {
	st := newStore(t)
	const members = 40
	for i := range members {
		_, _, err := st.EnsureSettings(t.Context(), notify.Member{OrgID: "acme", MemberID: fmt.Sprintf("admin-%02d", i), IsAdmin: true, AccountEmail: fmt.Sprintf("a%d@example.com", i)})
		require.NoError(t, err)
	}
	n, err := queueRental(t, st, "acme", "suspension-1")
	require.NoError(t, err)
	require.Equal(t, members, n)
	n, err = queueRental(t, st, "acme", "suspension-1")
	require.NoError(t, err)
	require.Zero(t, n, "the same key queues nothing twice")

	var mu sync.Mutex
	handed := map[string]int{}
	// looked is signalled whenever a sender's DeliverNext returns: a delivery holds its claim
	// until another sender has looked meanwhile (or, for the last ones, none is left to look).
	looked := make(chan struct{}, 1)
	deliver := func(_ context.Context, d notify.Delivery) notify.Attempt {
		mu.Lock()
		handed[d.ID]++
		mu.Unlock()
		select {
		case <-looked: // a look from before this claim does not count
		default:
		}
		select {
		case <-looked:
		case <-time.After(100 * time.Millisecond):
		}
		return notify.Attempt{MessageID: d.ID + "@test"}
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				claimed, err := deliverNext(t.Context(), st, time.Now(), claim, deliver)
				select {
				case looked <- struct{}{}:
				default:
				}
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
	_, _, err := st.EnsureSettings(t.Context(), notify.Member{OrgID: "acme", MemberID: "admin", IsAdmin: true, AccountEmail: "a@example.com"})
	require.NoError(t, err)
	_, err = queueRental(t, st, "acme", "k")
	require.NoError(t, err)

	now := time.Now()
	retryAt := now.Add(time.Hour)
	claimed, err := deliverNext(t.Context(), st, now, claim, func(context.Context, notify.Delivery) notify.Attempt {
		return notify.Attempt{MessageID: "m", Err: fmt.Errorf("421 try later"), RetryAt: retryAt}
	})
	require.NoError(t, err)
	require.True(t, claimed)
	claimed, err = deliverNext(t.Context(), st, now.Add(time.Minute), claim, func(context.Context, notify.Delivery) notify.Attempt {
		t.Fatal("not due yet")
		return notify.Attempt{}
	})
	require.NoError(t, err)
	require.False(t, claimed)
	claimed, err = deliverNext(t.Context(), st, retryAt.Add(time.Second), claim, func(_ context.Context, d notify.Delivery) notify.Attempt {
		require.Equal(t, 1, d.Attempts)
		return notify.Attempt{MessageID: "m", Err: fmt.Errorf("550 no such user"), GiveUp: true}
	})
	require.NoError(t, err)
	require.True(t, claimed)
	claimed, err = deliverNext(t.Context(), st, retryAt.Add(time.Hour), claim, func(context.Context, notify.Delivery) notify.Attempt {
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

// openTransactions counts the sessions of application app, other than this one, that are inside
// a transaction.
func openTransactions(t *testing.T, pool *pgxpool.Pool, app string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`, app).Scan(&n))
	return n
}

// requireUnlocked requires that no session holds a transaction open or the row of email id, as
// while a sender is in an SMTP exchange.
func requireUnlocked(t *testing.T, pool *pgxpool.Pool, id string) {
	t.Helper()
	require.Zero(t, openTransactions(t, pool, "tally-notifications"), "a transaction is open during the SMTP exchange")
	require.NoError(t, pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `SELECT 1 FROM emails WHERE id = $1 FOR UPDATE NOWAIT`, id)
		return err
	}), "the email's row is locked during the SMTP exchange")
}

// A sender that claimed an email and then froze (or died) in the SMTP exchange holds no
// transaction and no row lock; once its lease ends another sender sends the same email (same
// id, so the same Message-ID), and whatever the first one records late cannot undo or fail
// what the second one did.
func TestAClaimedButUnrecordedEmailIsTakenOverAfterTheLease(t *testing.T) {
	tests := []struct {
		name string
		// second is the outcome of the sender taking over, late the frozen sender's.
		second, late notify.Attempt
		want         notify.DeliveryStatus
	}{
		{"taken over and sent, late success", notify.Attempt{}, notify.Attempt{}, notify.StatusSent},
		{"taken over and sent, late give-up", notify.Attempt{}, notify.Attempt{Err: errors.New("550 refused"), GiveUp: true}, notify.StatusSent},
		{"taken over and sent, late retry", notify.Attempt{}, notify.Attempt{Err: errors.New("421 later"), RetryAt: time.Now()}, notify.StatusSent},
		{"taken over and retried, late give-up is fenced out", notify.Attempt{Err: errors.New("421 later"), RetryAt: time.Now().Add(time.Hour)},
			notify.Attempt{Err: errors.New("550 refused"), GiveUp: true}, notify.StatusPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, pool := newStoreWithPool(t)
			org := "acme"
			_, _, err := st.EnsureSettings(t.Context(), notify.Member{OrgID: org, MemberID: "admin", IsAdmin: true, AccountEmail: "a@example.com"})
			require.NoError(t, err)
			n, err := queueRental(t, st, org, "k")
			require.NoError(t, err)
			require.Equal(t, 1, n)

			// The first sender claims (committed) and freezes before recording.
			now := time.Now()
			first, ok, err := st.ClaimEmail(t.Context(), now, claim)
			require.NoError(t, err)
			require.True(t, ok)
			requireUnlocked(t, pool, first.ID)

			// Within the lease, nobody else takes it.
			_, ok, err = st.ClaimEmail(t.Context(), now.Add(claim.Lease-time.Second), claim)
			require.NoError(t, err)
			require.False(t, ok, "an email under a live claim was handed out")
			// After it, another sender takes it over: the same email, the same Message-ID.
			second, ok, err := st.ClaimEmail(t.Context(), now.Add(claim.Lease+time.Second), claim)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, first.ID, second.ID)
			require.Equal(t, 1, second.Attempts, "the first sender's claim counts as an attempt")
			a := tt.second
			a.MessageID = second.ID + "@test"
			require.NoError(t, st.RecordAttempt(t.Context(), second, a))

			// The frozen sender thaws and records late.
			late := tt.late
			late.MessageID = first.ID + "@test"
			require.NoError(t, st.RecordAttempt(t.Context(), first, late))
			ds, err := st.ListDeliveries(t.Context(), notify.DeliveryFilter{Limit: 10})
			require.NoError(t, err)
			require.Len(t, ds, 1)
			require.Equal(t, tt.want, ds[0].Status)
			require.Equal(t, 2, ds[0].Attempts)
			require.Equal(t, first.ID+"@test", ds[0].MessageID)
			if tt.want == notify.StatusPending {
				require.WithinDuration(t, tt.second.RetryAt, ds[0].NextAttemptAt, time.Millisecond, "the newer claim's retry stands")
			}
		})
	}
}
