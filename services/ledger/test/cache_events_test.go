package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func TestRedisFlushedAndStopped(t *testing.T) {
	t.Parallel()
	rds := testenv.Redis(t)
	l := ledgertest.Start(t, ledgertest.Options{RedisURL: rds.URL()})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	opts, err := redis.ParseURL(rds.URL())
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })

	credit(t, ops, "r", 10*unit, "seed")
	authorize := func(amount money.Nanos) *ledgerv1.AuthorizeResponse {
		t.Helper()
		r, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "r", Amount: usd(amount)})
		require.NoError(t, err)
		return r
	}
	require.True(t, authorize(10*unit).GetAllowed())
	cached := func() bool { return rdb.Exists(t.Context(), balancecache.Key("r")).Val() == 1 }
	require.Eventually(t, cached, 5*time.Second, 5*time.Millisecond, "the balance is cached under a {org} hash-tagged key")

	// Flush Redis in the middle of a stream of debits: nothing is lost.
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "r", Amount: usd(10_000_000), IdempotencyKey: fmt.Sprintf("f-%d", i)})
			require.NoError(t, err)
		})
		if i == 100 {
			require.NoError(t, rdb.FlushAll(t.Context()).Err())
		}
	}
	wg.Wait()
	require.NoError(t, rdb.FlushAll(t.Context()).Err())
	a := authorize(unit)
	require.Equal(t, 8*unit, nanos(t, a.GetAvailable()), "rebuilt from PostgreSQL after a flush")
	require.Eventually(t, cached, 5*time.Second, 5*time.Millisecond)

	// Redis down: Authorize answers from PostgreSQL, and never more than is there.
	require.NoError(t, rds.Stop(t.Context()))
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "r", Amount: usd(3 * unit), IdempotencyKey: "while-down"})
	require.NoError(t, err)
	a = authorize(5 * unit)
	require.True(t, a.GetAllowed())
	require.Equal(t, 5*unit, nanos(t, a.GetAvailable()))
	require.False(t, authorize(5*unit+1).GetAllowed(), "a Redis outage must not fail open")

	// Redis back (empty): rebuilt, still exact.
	require.NoError(t, rds.Restart(t.Context()))
	require.Eventually(t, func() bool { return nanos(t, authorize(0).GetAvailable()) == 5*unit }, 5*time.Second, 50*time.Millisecond)
}

func TestCacheNeverTakesAnOlderVersion(t *testing.T) {
	t.Parallel()
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := balancecache.New(rdb, balancecache.Config{TTL: time.Hour, Timeout: time.Second})
	require.NoError(t, err)
	requireNewerWins(t, c, rdb, "o")
}

func TestWatchEventsResumesWithoutGapOrDuplicate(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	watcher := l.Client(t, ledgertest.ServiceToken(t, "notifications"))

	const total = 300
	writes := make(chan struct{})
	var mu sync.Mutex
	debits := map[string]bool{} // transaction ids
	go func() {
		defer close(writes)
		var wg sync.WaitGroup
		for i := range total {
			wg.Go(func() {
				org := fmt.Sprintf("w%d", i%7)
				r, err := ops.Debit(context.WithoutCancel(t.Context()), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(money.Nanos(i + 1)), IdempotencyKey: fmt.Sprintf("k%d", i)})
				if err != nil {
					t.Errorf("debit: %v", err)
					return
				}
				mu.Lock()
				debits[r.GetTransactionId()] = true
				mu.Unlock()
			})
		}
		wg.Wait()
	}()

	var seen []int64
	got := map[string]bool{}
	var cursor int64
	// Read in short sessions, disconnecting after a few events each time, resuming from the cursor.
	for len(seen) < total {
		ctx, cancel := context.WithCancel(t.Context())
		stream, err := watcher.WatchEvents(ctx, &ledgerv1.WatchEventsRequest{AfterSequence: cursor})
		require.NoError(t, err)
		for range 37 {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			require.False(t, got[msg.GetEvent().GetTransactionId()], "event of %s delivered twice", msg.GetEvent().GetTransactionId())
			got[msg.GetEvent().GetTransactionId()] = true
			seen = append(seen, msg.GetEvent().GetSequence())
			cursor = msg.GetEvent().GetSequence()
			if len(seen) == total {
				break
			}
		}
		cancel()
	}
	<-writes
	// Sequence numbers grow but are not dense (the writing transaction's id, times 2^20, plus
	// the event's ordinal in it): each debit's event once, in growing sequence order.
	for i := 1; i < len(seen); i++ {
		require.Greater(t, seen[i], seen[i-1], "sequence numbers grow")
	}
	require.Equal(t, debits, got, "every debit's event, without gap or duplicate")

	// A member may watch only its own organization.
	member := l.Client(t, ledgertest.Token(t, memberClaims("w1")))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	stream, err := member.WatchEvents(ctx, &ledgerv1.WatchEventsRequest{OrgId: "w1"})
	require.NoError(t, err)
	msg, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, "w1", msg.GetEvent().GetOrgId())
}

// requireNewerWins checks on c (over rdb) that an entry of org is replaced only by a newer
// version, or the same version under a newer stamp, and expires.
func requireNewerWins(t *testing.T, c *balancecache.Cache, rdb redis.UniversalClient, org string) {
	t.Helper()
	newer := balancecache.Entry{Account: ledgerAccount(org, 7, 500), Epoch: 3}
	older := balancecache.Entry{Account: ledgerAccount(org, 6, 900), Epoch: 4}
	require.NoError(t, c.Set(t.Context(), newer))
	require.NoError(t, c.Set(t.Context(), older))
	got, ok, err := c.Get(t.Context(), org)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, newer, got, "an older version never replaces a newer one, whatever its stamp")

	// The same version under a newer epoch is a re-stamp of the same state; an older stamp is not.
	restamped := balancecache.Entry{Account: ledgerAccount(org, 7, 500), Epoch: 5}
	require.NoError(t, c.Set(t.Context(), restamped))
	require.NoError(t, c.Set(t.Context(), newer))
	got, _, err = c.Get(t.Context(), org)
	require.NoError(t, err)
	require.Equal(t, restamped, got)

	// A newer version always lands, even under an older stamp (it retires a stale entry).
	next := balancecache.Entry{Account: ledgerAccount(org, 8, 100), Epoch: 2}
	require.NoError(t, c.Set(t.Context(), next))
	got, _, err = c.Get(t.Context(), org)
	require.NoError(t, err)
	require.Equal(t, next, got)
	require.LessOrEqual(t, rdb.PTTL(t.Context(), balancecache.Key(org)).Val(), time.Hour, "entries expire")
}
