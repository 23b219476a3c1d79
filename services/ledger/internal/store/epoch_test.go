package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

func TestCacheEpochBumpBeatLeave(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a, b := uuid.NewString(), uuid.NewString()

	e, lost, err := st.BeatCacheEpoch(ctx, a, time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(1), e, "the migration starts at 1")
	require.Zero(t, lost)

	bumped, err := st.BumpCacheEpoch(ctx, b)
	require.NoError(t, err)
	require.Equal(t, int64(2), bumped)
	e, _, err = st.BeatCacheEpoch(ctx, a, time.Hour)
	require.NoError(t, err)
	require.Equal(t, bumped, e, "every replica reads the same epoch")

	// b stops beating: once it is older than the timeout, the next beat of a removes it and
	// bumps, in one statement.
	_, err = pool.Exec(ctx, `UPDATE cache_replicas SET seen_at = now() - interval '1 minute' WHERE id = $1`, b)
	require.NoError(t, err)
	e, lost, err = st.BeatCacheEpoch(ctx, a, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 1, lost)
	require.Equal(t, int64(3), e)
	e, lost, err = st.BeatCacheEpoch(ctx, a, 30*time.Second)
	require.NoError(t, err)
	require.Zero(t, lost, "removed once")
	require.Equal(t, int64(3), e)

	// A clean leave removes the replica without a bump.
	require.NoError(t, st.LeaveCacheEpoch(ctx, a))
	var replicas int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM cache_replicas`).Scan(&replicas))
	require.Zero(t, replicas)
	e, _, err = st.BeatCacheEpoch(ctx, b, time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(3), e)
}

// TestApplyReportsEveryLockedAccountForTheCache: a batch hands the cache the committed state of
// every account it locked, replays and refusals included (so a client's retry after a crash
// between commit and cache write refreshes the cache), with the epoch it read before locking.
func TestApplyReportsEveryLockedAccountForTheCache(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	epoch, err := st.BumpCacheEpoch(ctx, uuid.NewString())
	require.NoError(t, err)

	applied, err := apply(ctx, st, []*ledger.Request{req(ledger.OpCredit, "a", 100, "a1"), req(ledger.OpCredit, "b", 5, "b1")})
	require.NoError(t, err)
	require.Equal(t, epoch, applied.CacheEpoch)
	byOrg := func(a []ledger.Account) map[string]ledger.Account {
		m := map[string]ledger.Account{}
		for _, acct := range a {
			m[acct.OrgID] = acct
		}
		return m
	}
	got := byOrg(applied.Accounts)
	require.Len(t, got, 2)
	require.Equal(t, int64(100), int64(got["a"].Balance))

	for _, tc := range []struct {
		name string
		reqs []*ledger.Request
	}{
		{"replay only (nothing written)", []*ledger.Request{req(ledger.OpCredit, "a", 100, "a1")}},
		{"refusal only", []*ledger.Request{{Op: ledger.OpDebit, OrgID: "a", Amount: 1000, IdempotencyKey: "big", RequireFunds: true, Reason: "t", Actor: "t"}}},
		{"replay next to a write", []*ledger.Request{req(ledger.OpCredit, "a", 100, "a1"), req(ledger.OpCredit, "b", 5, "b2")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			applied, err := apply(ctx, st, tc.reqs)
			require.NoError(t, err)
			require.Equal(t, epoch, applied.CacheEpoch)
			a, ok := byOrg(applied.Accounts)["a"]
			require.True(t, ok, "the replayed or refused organization's state is reported")
			stored, _, err := st.Account(ctx, "a")
			require.NoError(t, err)
			require.Equal(t, stored, a)
		})
	}

	acct, found, err := st.Account(ctx, "a")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, int64(100), int64(acct.Balance))
	_, found, err = st.Account(ctx, "nobody")
	require.NoError(t, err)
	require.False(t, found)

	// Many at once (Authorize's batched fallback), in the order asked, repeats included.
	accts, founds, e, err := st.AccountsForCache(ctx, []string{"a", "nobody", "b", "a"})
	require.NoError(t, err)
	require.Equal(t, epoch, e)
	require.Equal(t, []bool{true, false, true, true}, founds)
	require.Equal(t, acct, accts[0])
	require.Equal(t, acct, accts[3])
	require.Equal(t, "nobody", accts[1].OrgID)
	require.Equal(t, "USD", accts[1].Currency)
	require.Equal(t, int64(10), int64(accts[2].Balance))
}
