package store_test

import (
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/store"
)

// TestUpdateUsageExactlyOnce has eight followers race through the outbox in pages of 7 events:
// each page is counted once (the cursor moves with the rows), whoever counts it; a follower that
// finds the cursor taken skips its turn; what is not usage moves the cursor and counts nothing.
func TestUpdateUsageExactlyOnce(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	want := commitUsage(t, st)
	before, err := st.UsageCursor(t.Context())
	require.NoError(t, err)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var counted, busy int
	for range 8 {
		wg.Go(func() {
			for {
				page, err := st.UpdateUsage(t.Context(), 7, ledger.AggregateUsage)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counted += page.Events
				if page.Busy {
					busy++
				}
				mu.Unlock()
				// Not Events == 0: a page stops short of events above the horizon (another
				// test's transaction in flight on the shared cluster) and they come later.
				if !page.Busy && page.LastSeq == before.Head {
					return
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int(before.Uncounted), counted, "every event read once")
	t.Logf("%d turns skipped while another follower held the cursor", busy)
	after, err := st.UsageCursor(t.Context())
	require.NoError(t, err)
	require.Equal(t, store.OutboxState{Counted: before.Head, Head: before.Head}, after)

	got, charges := usageOf(t, pool, "acme")
	require.Equal(t, int64(150), charges)
	require.Equal(t, len(want), len(got))
	for item, w := range want {
		require.Zero(t, w.Cmp(got[item]), "%s: want %s, got %s", item, w, got[item])
	}
}

// commitUsage commits a credit and 200 debits and refunds of "acme" in batches of 16, and
// returns the amounts the usage summary must hold by kind/item.
func commitUsage(t *testing.T, st *store.Store) map[string]*big.Int {
	t.Helper()
	var reqs []*ledger.Request
	reqs = append(reqs, req(ledger.OpCredit, "acme", 1_000_000_000, "seed"))
	want := map[string]*big.Int{}
	add := func(item string, n int64) {
		if want[item] == nil {
			want[item] = new(big.Int)
		}
		want[item].Add(want[item], big.NewInt(n))
	}
	for i := range 200 {
		r := req(ledger.OpDebit, "acme", money.Nanos(1000+int64(i)), fmt.Sprintf("d-%d", i))
		switch i % 4 {
		case 0:
			r.Metadata = map[string]string{ledger.MetaModelID: "gpt-x"}
			add("model/gpt-x", 1000+int64(i))
		case 1:
			r.Metadata = map[string]string{ledger.MetaInstanceType: "a100"}
			add("instance/a100", 1000+int64(i))
		case 2:
			add("other/other", 1000+int64(i))
		default:
			r = req(ledger.OpAdjust, "acme", money.Nanos(-int64(i)), fmt.Sprintf("refund-%d", i))
		}
		reqs = append(reqs, r)
	}
	for i := 0; i < len(reqs); i += 16 {
		_, err := apply(t.Context(), st, reqs[i:min(i+16, len(reqs))])
		require.NoError(t, err)
	}
	return want
}

// usageOf sums org's usage_daily rows by kind/item, and counts their charges.
func usageOf(t *testing.T, pool *pgxpool.Pool, org string) (map[string]*big.Int, int64) {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT kind || '/' || item_id, amount::text, count FROM usage_daily WHERE org_id = $1`, org)
	require.NoError(t, err)
	got := map[string]*big.Int{}
	var charges int64
	for rows.Next() {
		var item, amount string
		var n int64
		require.NoError(t, rows.Scan(&item, &amount, &n))
		v, ok := new(big.Int).SetString(amount, 10)
		require.True(t, ok)
		if got[item] == nil {
			got[item] = new(big.Int)
		}
		got[item].Add(got[item], v)
		charges += n
	}
	require.NoError(t, rows.Err())
	return got, charges
}
