package test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/shard"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func shardPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.WithoutCancel(t.Context()), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// orgOnShard returns an organization name the hash puts on shard s.
func orgOnShard(t *testing.T, prefix, s string) string {
	t.Helper()
	m, err := shard.NewMap([]string{"a", "b"}, nil)
	require.NoError(t, err)
	for i := range 1000 {
		if org := fmt.Sprintf("%s-%d", prefix, i); m.Hashed(org) == s {
			return org
		}
	}
	t.Fatalf("no organization of %s on %s", prefix, s)
	return ""
}

// requireShardInvariants checks every shard's double entry (requireBalanced) and, per
// organization, that its balance equals the sum of its transactions; and that the
// shard_transfer accounts of all shards sum to zero (money moved, none created).
func requireShardInvariants(t *testing.T, urls map[string]string) {
	t.Helper()
	var transfer int64
	for _, u := range urls {
		requireBalanced(t, u)
		pool := shardPool(t, u)
		var bad int
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM ledger.accounts a
LEFT JOIN (SELECT org_id, sum(amount) AS s FROM ledger.transactions GROUP BY org_id) x ON x.org_id = a.org_id
WHERE a.kind = 'org' AND a.balance <> coalesce(x.s, 0)`).Scan(&bad))
		require.Zero(t, bad, "organizations whose balance differs from their transactions")
		var dup int
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT 1 FROM ledger.transactions GROUP BY org_id, idempotency_key HAVING count(*) > 1) d`).Scan(&dup))
		require.Zero(t, dup, "duplicate transactions")
		var s int64
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT coalesce(sum(balance), 0)::bigint FROM ledger.accounts WHERE kind = 'shard_transfer'`).Scan(&s))
		transfer += s
	}
	require.Zero(t, transfer, "shard_transfer balances sum to zero over the shards")
}

// Organizations live on the shard the hash gives them, each shard books its own double entry,
// and every balance is exact.
func TestShardsKeepBalancesExactPerShard(t *testing.T) {
	t.Parallel()
	urls, shards := ledgertest.TwoShards(t)
	l := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], Shards: shards})
	c := l.Client(t, ledgertest.OpsToken(t))
	m, err := shard.NewMap([]string{"a", "b"}, nil)
	require.NoError(t, err)
	const orgs = 40
	var wg sync.WaitGroup
	for i := range orgs {
		wg.Go(func() {
			org := fmt.Sprintf("org-%d", i)
			credit(t, c, org, 1000, "top-up")
			for j := range 5 {
				_, err := c.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(money.Nanos(i + 1)), IdempotencyKey: fmt.Sprintf("d-%d", j)})
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	perShard := map[string]int{}
	for i := range orgs {
		org := fmt.Sprintf("org-%d", i)
		require.Equal(t, money.Nanos(1000-5*(i+1)), nanos(t, balance(t, c, org).GetBalance()), org)
		home := m.Hashed(org)
		perShard[home]++
		for name, u := range urls {
			var n int
			require.NoError(t, shardPool(t, u).QueryRow(t.Context(), `SELECT count(*) FROM ledger.accounts WHERE org_id = $1`, org).Scan(&n))
			if name == home {
				require.Equal(t, 1, n, "%s lives on %s", org, home)
			} else {
				require.Zero(t, n, "%s is not opened on %s", org, name)
			}
		}
	}
	require.Positive(t, perShard["a"])
	require.Positive(t, perShard["b"])
	requireShardInvariants(t, urls)
}

// An organization moved between shards while two replicas debit it — one of them with a shard
// map that never refreshes, so only the residency fence sends it to the new shard — loses and
// doubles nothing: every acknowledged debit is on the target once, replays of keys used before
// the move answer the original transaction, a hold placed before the move is captured after it,
// the history and usage followed it, and every shard's books and the sum over shards balance.
func TestOrgMovesBetweenShardsUnderConcurrentDebits(t *testing.T) {
	t.Parallel()
	urls, shards := ledgertest.TwoShards(t)
	redisURL := testenv.RedisURL(t)
	mover := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], RedisURL: redisURL, Shards: shards})
	stale := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], RedisURL: redisURL, Shards: shards, ShardMapRefresh: time.Hour})
	ops := mover.Client(t, ledgertest.OpsToken(t))
	clients := []ledgerv1.LedgerServiceClient{
		mover.Client(t, ledgertest.ServiceToken(t, "backend")),
		stale.Client(t, ledgertest.ServiceToken(t, "backend")),
	}
	org := orgOnShard(t, "hot", "a")
	const start = 1_000_000_000
	credit(t, ops, org, start, "top-up")
	before, err := clients[0].Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(7), IdempotencyKey: "before-move",
		Metadata: map[string]string{"model_id": "m1"}})
	require.NoError(t, err)
	hold, err := clients[0].Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: org, Amount: usd(100), IdempotencyKey: "hold-1", Ttl: durationpb.New(time.Hour)})
	require.NoError(t, err)

	// Debits of 1 nano each, retried with their key until acknowledged (as a backend would).
	acked, stopDebits := debitConcurrently(t, clients, org)
	// Let both replicas debit on the source first.
	waitUntil(t, func() bool { return acked.Load() >= 50 })
	res, err := ops.MoveOrganization(t.Context(), &ledgerv1.MoveOrganizationRequest{OrgId: org, ToShard: "b", IdempotencyKey: "move-1"})
	require.NoError(t, err)
	require.Equal(t, "a", res.GetFromShard())
	require.Equal(t, money.Nanos(100), nanos(t, res.GetHeld()))
	movedAt := acked.Load()
	waitUntil(t, func() bool { return acked.Load() >= movedAt+50 })
	stopDebits()

	// The same move again is a replay.
	again, err := ops.MoveOrganization(t.Context(), &ledgerv1.MoveOrganizationRequest{OrgId: org, ToShard: "b", IdempotencyKey: "move-1"})
	require.NoError(t, err)
	require.True(t, again.GetReplayed())
	require.Equal(t, res.GetBalance().String(), again.GetBalance().String())

	// Replays of a key used before the move answer the original, on either replica.
	for _, c := range clients {
		r, err := c.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(7), IdempotencyKey: "before-move", Metadata: map[string]string{"model_id": "m1"}})
		require.NoError(t, err)
		require.True(t, r.GetReplayed())
		require.Equal(t, before.GetTransactionId(), r.GetTransactionId())
	}
	// The hold moved too: captured through the stale replica.
	capRes, err := clients[1].Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: hold.GetHold().GetId(), Amount: usd(60), IdempotencyKey: "cap-1"})
	require.NoError(t, err)
	require.Equal(t, ledgerv1.HoldStatus_HOLD_STATUS_CAPTURED, capRes.GetHold().GetStatus())
	authz, err := clients[1].Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: org, Amount: usd(1000)})
	require.NoError(t, err)
	require.True(t, authz.GetAllowed(), "a check follows the organization, not the emptied source")

	want := money.Nanos(start - 7 - 60 - acked.Load())
	for _, c := range clients {
		require.Equal(t, want, nanos(t, balance(t, c, org).GetBalance()), "every acknowledged debit once, nothing else")
	}
	requireMoved(t, urls, org, "a", "b", acked.Load()+1)
	// The usage summary followed the organization: every debit counted once.
	waitUntil(t, func() bool {
		sum, err := clients[1].GetUsageSummary(t.Context(), &ledgerv1.GetUsageSummaryRequest{OrgId: org, Days: 1})
		require.NoError(t, err)
		var n int64
		for _, it := range sum.GetTotals() {
			n += it.GetCount()
		}
		return n == acked.Load()+2 // the debits, the one before the move and the capture
	})
	// The history followed it: the newest transactions list the capture, then the debits.
	txs, err := clients[1].ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 500})
	require.NoError(t, err)
	require.Equal(t, ledgerv1.TransactionKind_TRANSACTION_KIND_CAPTURE, txs.GetTransactions()[0].GetKind())
	requireMovesBack(t, ops, clients[1], urls, org, want, acked.Load()+1)
}

// debitConcurrently debits org 1 nano at a time from six workers over clients, each debit retried
// with its key while the answer is Unavailable (as a backend does), until stop is called; acked
// counts the acknowledged debits.
func debitConcurrently(t *testing.T, clients []ledgerv1.LedgerServiceClient, org string) (acked *atomic.Int64, stop func()) {
	t.Helper()
	acked = new(atomic.Int64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			c := clients[w%len(clients)]
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				for {
					_, err := c.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(1), IdempotencyKey: key, Metadata: map[string]string{"model_id": "m1"}})
					if err == nil {
						acked.Add(1)
						break
					}
					if code := status.Code(err); code != codes.Unavailable {
						t.Errorf("debit %s: %v", key, err)
						return
					}
				}
			}
		})
	}
	return acked, func() { close(done); wg.Wait() }
}

// requireMoved checks the rows of a finished move of org from one shard to another: the target
// holds its debits once each, the source row is an empty fence, the directory overrides it, and
// every shard balances.
func requireMoved(t *testing.T, urls map[string]string, org, from, to string, debits int64) {
	t.Helper()
	src, dst := shardPool(t, urls[from]), shardPool(t, urls[to])
	var n int64
	require.NoError(t, dst.QueryRow(t.Context(), `SELECT count(*) FROM ledger.transactions WHERE org_id = $1 AND kind = 'debit'`, org).Scan(&n))
	require.Equal(t, debits, n, "the target has every debit (copied or its own) once")
	var bal int64
	var movedTo string
	require.NoError(t, src.QueryRow(t.Context(), `SELECT balance::bigint, coalesce(moved_to, '') FROM ledger.accounts WHERE org_id = $1`, org).Scan(&bal, &movedTo))
	require.Zero(t, bal)
	require.Equal(t, to, movedTo)
	var overridden string
	require.NoError(t, shardPool(t, urls["a"]).QueryRow(t.Context(), `SELECT coalesce((SELECT shard FROM ledger.shard_overrides WHERE org_id = $1), '')`, org).Scan(&overridden))
	m, err := shard.NewMap([]string{"a", "b"}, nil)
	require.NoError(t, err)
	if m.Hashed(org) == to {
		require.Empty(t, overridden, "no override where the hash puts it")
	} else {
		require.Equal(t, to, overridden)
	}
	requireShardInvariants(t, urls)
}

// requireMovesBack moves org back to shard a and checks it lost, doubled and kept nothing: the
// history that returns keeps its rows once, the balance is want.
func requireMovesBack(t *testing.T, ops, c ledgerv1.LedgerServiceClient, urls map[string]string, org string, want money.Nanos, debits int64) {
	t.Helper()
	res, err := ops.MoveOrganization(t.Context(), &ledgerv1.MoveOrganizationRequest{OrgId: org, ToShard: "a", IdempotencyKey: "move-2"})
	require.NoError(t, err)
	require.Equal(t, "b", res.GetFromShard())
	require.Equal(t, want, nanos(t, balance(t, c, org).GetBalance()))
	requireMoved(t, urls, org, "b", "a", debits)
	r, err := c.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(1), IdempotencyKey: "w0-0", Metadata: map[string]string{"model_id": "m1"}})
	require.NoError(t, err)
	require.True(t, r.GetReplayed(), "a key of the first residency replays after two moves")
}

// WatchEvents merges the shards; a watcher resumed from an event's cursor gets every later event
// of every shard once, none it had.
func TestWatchEventsAcrossShardsResumesFromCursor(t *testing.T) {
	t.Parallel()
	urls, shards := ledgertest.TwoShards(t)
	l := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], Shards: shards})
	c := l.Client(t, ledgertest.OpsToken(t))
	orgA, orgB := orgOnShard(t, "w", "a"), orgOnShard(t, "w", "b")
	write := func(from, to int) {
		for i := from; i < to; i++ {
			for _, org := range []string{orgA, orgB} {
				credit(t, c, org, 10, fmt.Sprintf("c-%d", i))
			}
		}
	}
	type seen struct {
		shard string
		seq   int64
	}
	recv := func(ctx context.Context, s ledgerv1.LedgerService_WatchEventsClient, n int) ([]seen, string) {
		var out []seen
		var cursor string
		for len(out) < n {
			r, err := s.Recv()
			require.NoError(t, err)
			e := r.GetEvent()
			require.NotEmpty(t, e.GetCursor())
			out = append(out, seen{e.GetShard(), e.GetSequence()})
			cursor = e.GetCursor()
		}
		return out, cursor
	}
	write(0, 10) // 20 events, 10 per shard
	ctx, cancel := context.WithCancel(t.Context())
	s, err := c.WatchEvents(ctx, &ledgerv1.WatchEventsRequest{})
	require.NoError(t, err)
	first, cursor := recv(ctx, s, 13)
	cancel()
	write(10, 15) // 10 more
	s2, err := c.WatchEvents(t.Context(), &ledgerv1.WatchEventsRequest{AfterCursor: cursor})
	require.NoError(t, err)
	rest, _ := recv(t.Context(), s2, 30-13)

	all := map[seen]bool{}
	last, count := map[string]int64{}, map[string]int{}
	for _, e := range append(first, rest...) {
		require.False(t, all[e], "event %v delivered twice", e)
		all[e] = true
		require.Greater(t, e.seq, last[e.shard], "each shard's events in order")
		last[e.shard] = e.seq
		count[e.shard]++
	}
	require.Equal(t, map[string]int{"a": 15, "b": 15}, count, "every event of both shards, none missing")

	// after_sequence resumes one shard only.
	bad, err := c.WatchEvents(t.Context(), &ledgerv1.WatchEventsRequest{AfterSequence: 3})
	require.NoError(t, err)
	_, err = bad.Recv()
	requireCode(t, err, codes.InvalidArgument)
}

// waitUntil polls cond until it holds (the test's deadline bounds it).
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatal("condition never held")
		case <-tick.C:
		}
	}
}
