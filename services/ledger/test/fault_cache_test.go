package test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestFault_RedisRestoredFromAnOlderSnapshot: Redis comes back with an entry older than
// PostgreSQL (a restart from an RDB/AOF snapshot, a failover to a lagging replica) for an
// organization nobody touched since. Authorize must not answer from its higher balance.
func TestFault_RedisRestoredFromAnOlderSnapshot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// restore brings the old entry back.
		restore func(t *testing.T, env *staleEnv)
	}{
		{"redis restarted from the snapshot", func(t *testing.T, env *staleEnv) {
			// The snapshot is loaded before the server accepts connections: nothing the ledger
			// did before sees it. The entry carries the epoch that is still current.
			require.NoError(t, env.rds.Stop(t.Context()))
			require.NoError(t, env.rds.Restart(t.Context()))
			// A cache write that failed while Redis was down asks for a bump, so the epoch may
			// have moved since the snapshot: the restored entry is stamped with the epoch current
			// now (what a snapshot taken just before the restart would carry), until one holds.
			require.Eventually(t, func() bool {
				require.NoError(t, env.probe.rdb.RestoreReplace(t.Context(), balancecache.Key("victim"), 0, env.snapshot).Err())
				require.NoError(t, env.probe.rdb.HSet(t.Context(), balancecache.Key("victim"), "ep", env.probe.epoch(t)).Err())
				_, stamp, ok := env.probe.entry(t, "victim")
				return ok && stamp == env.probe.epoch(t)
			}, waitFor, tick, "precondition: the restored entry is stamped with the current epoch")
			// Another organization's call makes the ledger reconnect to the restored server.
			for range 3 {
				_, _ = env.svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "other", Amount: usd(0)})
			}
		}},
		{"an old entry written back into a live redis", func(t *testing.T, env *staleEnv) {
			// Same server, an entry from before the last bump (here: a ledger restart).
			env.restartLedger(t)
			env.probe.waitCached(t, env.ledger, env.svc, "victim", 60*unit)
			require.NoError(t, env.probe.rdb.RestoreReplace(t.Context(), balancecache.Key("victim"), 0, env.snapshot).Err())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newStaleEnv(t)
			tc.restore(t, env)
			b, _, ok := env.probe.entry(t, "victim")
			require.True(t, ok)
			require.Equal(t, 100*unit, b, "precondition: Redis holds the old, higher balance")

			requireNeverAllowed(t, env.svc, "victim", 90*unit, 60*unit, 50)
			require.Positive(t, metric(t, env.ledger.MetricsURL, "tally_ledger_authorize_source_total", `reason="stale",source="db"`)+
				metric(t, env.ledger.MetricsURL, "tally_ledger_authorize_source_total", `reason="epoch_unknown",source="db"`))
			// The entry is rebuilt from PostgreSQL, and served from the cache again.
			env.probe.waitCached(t, env.ledger, env.svc, "victim", 60*unit)
			requireNeverAllowed(t, env.svc, "victim", 90*unit, 60*unit, 5)
		})
	}
}

// staleEnv is a ledger whose Redis holds, in snapshot, the entry of "victim" at 100 while the
// truth is 60.
type staleEnv struct {
	*cachedLedger
	snapshot string
}

func newStaleEnv(t *testing.T) *staleEnv {
	t.Helper()
	env := &staleEnv{cachedLedger: startCached(t, "victim", ledgertest.Options{})}
	snap, err := env.probe.rdb.Dump(t.Context(), balancecache.Key("victim")).Result()
	require.NoError(t, err)
	env.snapshot = snap
	_, err = env.svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "victim", Amount: usd(40 * unit), IdempotencyKey: "spend"})
	require.NoError(t, err)
	env.probe.waitCached(t, env.ledger, env.svc, "victim", 60*unit)
	requireNeverAllowed(t, env.svc, "victim", 90*unit, 60*unit, 1)
	return env
}

func (env *staleEnv) restartLedger(t *testing.T) {
	t.Helper()
	env.ledger.Stop(t)
	env.ledger = ledgertest.Start(t, ledgertest.Options{DatabaseURL: env.dbURL, RedisURL: env.ledger.RedisURL, Metrics: true})
	env.svc = env.ledger.Client(t, ledgertest.ServiceToken(t, "model-backend"))
}

// TestFault_LedgerRestartDuringRedisStall: the ledger dies between a commit and its cache write
// while Redis is stalled, and a new replica starts before Redis answers again. Nothing of the
// old replica's memory survives; the new one must still not trust the old entry.
func TestFault_LedgerRestartDuringRedisStall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// stalledDebit is debited through the first replica during the stall (its cache
		// write times out) before it goes away; 0 for none.
		stalledDebit money.Nanos
	}{
		{"crash right after a commit", 0},
		{"crash after a failed cache write", 10 * unit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startCached(t, "victim", ledgertest.Options{})
			rds, dbURL, first, svc, p := c.rds, c.dbURL, c.ledger, c.svc, c.probe

			require.NoError(t, rds.Pause())
			t.Cleanup(func() { _ = rds.Resume() })
			if tc.stalledDebit > 0 {
				// It commits: its cache write times out off the commit path.
				_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "victim", Amount: usd(tc.stalledDebit), IdempotencyKey: "during-stall"})
				require.NoError(t, err)
			}
			first.Stop(t)
			// The kill -9 between commit and cache write: PostgreSQL has it, Redis never will.
			crashedReplica(t, dbURL, debitReq("victim", 40*unit-tc.stalledDebit, "crashed"))

			before := p.epoch(t)
			second := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, RedisURL: rds.URL(), Metrics: true})
			require.Eventually(t, func() bool { return p.epoch(t) > before }, waitFor, tick, "a replica retires every entry when it starts, before it reaches Redis")
			svc2 := second.Client(t, ledgertest.ServiceToken(t, "model-backend"))
			// Still stalled: Authorize answers from PostgreSQL within the Redis timeout (for an
			// organization without account, so that no rebuild write times out and bumps: what
			// protects the victim below is the new replica's start alone).
			requireNeverAllowed(t, svc2, "nobody", 1, 0, 3)

			require.NoError(t, rds.Resume())
			requireNeverAllowed(t, svc2, "victim", 90*unit, 60*unit, 50)
			p.waitCached(t, second, svc2, "victim", 60*unit)
			requireNeverAllowed(t, svc2, "victim", 90*unit, 60*unit, 5)
		})
	}
}

// TestFault_ReplayRefreshesTheCache: a client's retry after a crash between commit and cache
// write replays the stored result and refreshes the cache, on a replica that never restarted.
func TestFault_ReplayRefreshesTheCache(t *testing.T) {
	t.Parallel()
	c := startCached(t, "victim", ledgertest.Options{})
	dbURL, svc, p := c.dbURL, c.svc, c.probe

	// Another replica (unregistered, so never found lost) committed and crashed.
	crashedReplica(t, dbURL, debitReq("victim", 40*unit, "call-7"))
	retry, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "victim", Amount: usd(40 * unit), IdempotencyKey: "call-7"})
	require.NoError(t, err)
	require.Equal(t, 60*unit, nanos(t, retry.GetBalance()), "the replay returns the stored result")
	// Right after the replay, and from then on.
	requireNeverAllowed(t, svc, "victim", 90*unit, 60*unit, 20)
	require.Eventually(t, func() bool { b, _, ok := p.entry(t, "victim"); return ok && b == 60*unit }, waitFor, tick, "the replay rewrote the entry")
}

// TestFault_LostReplicaRetiresTheCache: a replica that stops beating (killed and never
// restarted, partitioned from PostgreSQL) may have committed writes the cache never got; once it
// is seen lost, the others stop trusting the cache.
func TestFault_LostReplicaRetiresTheCache(t *testing.T) {
	t.Parallel()
	c := startCached(t, "victim", ledgertest.Options{ReplicaTimeout: time.Second})
	dbURL, l, svc, p := c.dbURL, c.ledger, c.svc, c.probe
	epoch := p.epoch(t)

	// A replica that beat once, committed, and died.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := p.pool.Exec(ctx, `INSERT INTO ledger.cache_replicas (id, seen_at) VALUES (gen_random_uuid(), now())`)
	require.NoError(t, err)
	crashedReplica(t, dbURL, debitReq("victim", 40*unit, "crashed"))

	// A refusal alone may come from PostgreSQL for another reason (this replica's epoch reading
	// aged out on a loaded machine): wait for the lost replica's bump as well.
	require.Eventually(t, func() bool {
		a, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "victim", Amount: usd(90 * unit)})
		require.NoError(t, err)
		return !a.GetAllowed() && nanos(t, a.GetAvailable()) == 60*unit && p.epoch(t) > epoch
	}, waitFor, tick, "the lost replica's commit is seen and the cache epoch bumped")
	// The bump seen may be another one (an epoch reading aged out): the lost replica's follows.
	require.Eventually(t, func() bool {
		return metric(t, l.MetricsURL, "tally_ledger_cache_invalidations_total", `reason="replica_lost"`) > 0
	}, waitFor, tick, "the replica is seen lost")
	requireNeverAllowed(t, svc, "victim", 90*unit, 60*unit, 20)
}

// TestFault_RedisDownOrStalled: debits keep committing and Authorize answers from PostgreSQL,
// exactly, while Redis is stopped or paused; the cache is used again once it is back.
func TestFault_RedisDownOrStalled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		down, back func(t *testing.T, r redisFaults)
	}{
		{"stopped", func(t *testing.T, r redisFaults) { require.NoError(t, r.Stop(t.Context())) }, func(t *testing.T, r redisFaults) { require.NoError(t, r.Restart(t.Context())) }},
		{"paused", func(t *testing.T, r redisFaults) { require.NoError(t, r.Pause()) }, func(t *testing.T, r redisFaults) { require.NoError(t, r.Resume()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startCached(t, "o", ledgertest.Options{})
			rds, dbURL, l, svc, p := c.rds, c.dbURL, c.ledger, c.svc, c.probe

			tc.down(t, rds)
			t.Cleanup(func() { _ = rds.Resume() })
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "o", Amount: usd(unit), IdempotencyKey: fmt.Sprintf("d-%d", i)})
					require.NoError(t, err, "debits commit without Redis")
				})
			}
			wg.Wait()
			requireNeverAllowed(t, svc, "o", 50*unit+1, 50*unit, 10)
			require.Positive(t, metric(t, l.MetricsURL, "tally_ledger_authorize_source_total", `reason="cache_unavailable",source="db"`)+
				metric(t, l.MetricsURL, "tally_ledger_authorize_source_total", `reason="epoch_unknown",source="db"`))
			// The updater's writes to the unreachable Redis fail within their own deadline, which
			// may end after Authorize's shorter read deadline: wait for it.
			require.Eventually(t, func() bool {
				return metric(t, l.MetricsURL, "tally_ledger_cache_invalidations_total", `reason="cache_write_failed"`) > 0
			}, waitFor, tick)

			tc.back(t, rds)
			p.waitCached(t, l, svc, "o", 50*unit) // the cache serves again
			requireNeverAllowed(t, svc, "o", 50*unit+1, 50*unit, 5)
			requireBalanced(t, dbURL)
		})
	}
}

type redisFaults interface {
	Stop(context.Context) error
	Restart(context.Context) error
	Pause() error
	Resume() error
}

// TestAuthorizeOverspendIsBoundedByCallsInFlight: the README's rule. Callers that Authorize
// before every Debit can overspend an organization by at most the calls they have in flight
// (one each here), whatever happens to Redis meanwhile: Authorize never answers from a state
// older than the debits already acknowledged.
func TestAuthorizeOverspendIsBoundedByCallsInFlight(t *testing.T) {
	t.Parallel()
	rds := testenv.Redis(t)
	dbURL := testenv.PostgresURL(t)
	l := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, RedisURL: rds.URL()})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	credit(t, l.Client(t, ledgertest.OpsToken(t)), "o", 300*unit, "seed")
	p := newProbe(t, rds.URL(), dbURL)

	const callers = 16
	var acked atomic.Int64
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				a, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "o", Amount: usd(unit)})
				if !assertNoErr(t, err) || !a.GetAllowed() {
					return
				}
				_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "o", Amount: usd(unit), IdempotencyKey: fmt.Sprintf("c-%d", seq.Add(1))})
				if !assertNoErr(t, err) {
					return
				}
				acked.Add(1)
			}
		})
	}
	// Faults while they spend: a flush, a stall, a restart (empty), each after some progress.
	for _, fault := range []func(){
		func() { require.NoError(t, p.rdb.FlushAll(t.Context()).Err()) },
		func() { require.NoError(t, rds.Pause()); waitAcked(t, &acked, 10); require.NoError(t, rds.Resume()) },
		func() {
			require.NoError(t, rds.Stop(t.Context()))
			waitAcked(t, &acked, 10)
			require.NoError(t, rds.Restart(t.Context()))
		},
	} {
		waitAcked(t, &acked, 30)
		fault()
	}
	wg.Wait()
	b := balance(t, l.Client(t, ledgertest.OpsToken(t)), "o")
	got := nanos(t, b.GetBalance())
	require.Equal(t, 300*unit-money.Nanos(acked.Load())*unit, got, "every acknowledged debit is in the balance")
	require.GreaterOrEqual(t, got, -callers*unit, "overspend is bounded by the calls in flight")
	requireBalanced(t, dbURL)
}

func assertNoErr(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("call failed: %v", err)
		return false
	}
	return true
}

// waitAcked waits until n more debits are acknowledged (or the callers ran out of credits).
func waitAcked(t *testing.T, acked *atomic.Int64, n int64) {
	t.Helper()
	target := acked.Load() + n
	require.Eventually(t, func() bool { return acked.Load() >= min(target, 300) }, waitFor, tick)
}
