package app

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

func acct(org string, version int64, bal money.Nanos) ledger.Account {
	return ledger.Account{OrgID: org, Currency: "USD", Version: version, Balance: bal}
}

func TestCacheUpdaterCoalescesAndIsBounded(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var reasons []string
	invalidate := func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }
	got := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), reasons...) }
	u := newCacheUpdater(nil, 2, invalidate, slog.New(slog.DiscardHandler), testMetrics(t))

	// The newest state of an organization wins, whatever order they arrive in.
	u.submit(3, true, acct("a", 1, 100))
	u.submit(3, true, acct("a", 3, 70))
	u.submit(4, false, acct("a", 2, 90))
	e, ok := u.lookup("a")
	require.True(t, ok)
	require.Equal(t, int64(3), e.Account.Version)
	u.submit(5, false, acct("a", 3, 70))
	e, _ = u.lookup("a")
	require.Equal(t, int64(5), e.Epoch, "the same state under a newer epoch is a re-stamp")
	require.Empty(t, got())

	u.submit(3, true, acct("b", 1, 10))
	// Full: a rebuild is dropped quietly; a committed state invalidates the cache.
	u.submit(3, false, acct("c", 1, 10))
	require.Empty(t, got())
	_, ok = u.lookup("c")
	require.False(t, ok)
	u.submit(3, true, acct("d", 1, 10))
	require.Equal(t, []string{reasonQueueFull}, got())
}

func TestCacheUpdaterFailedWriteInvalidates(t *testing.T) {
	t.Parallel()
	rds := testenv.Redis(t)
	opts, err := redis.ParseURL(rds.URL())
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	cache, err := balancecache.New(rdb, balancecache.Config{Timeout: time.Second})
	require.NoError(t, err)

	var mu sync.Mutex
	var reasons []string
	u := newCacheUpdater(cache, 100, func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }, slog.New(slog.DiscardHandler), testMetrics(t))

	u.submit(2, true, acct("a", 1, 100))
	require.True(t, u.flush(t.Context()))
	_, ok := u.lookup("a")
	require.False(t, ok, "written: nothing pending")
	e, found, err := cache.Get(t.Context(), "a")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, balancecache.Entry{Account: acct("a", 1, 100), Epoch: 2}, e)

	require.NoError(t, rds.Stop(t.Context()))
	u.submit(2, true, acct("a", 2, 60))
	require.False(t, u.flush(t.Context()))
	mu.Lock()
	require.Equal(t, []string{reasonWriteFailed}, reasons)
	mu.Unlock()
}
