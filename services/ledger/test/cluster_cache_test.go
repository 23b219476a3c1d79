package test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// clusterLedger is a ledger whose balance cache is a Redis Cluster of its own (3 masters, each
// with a replica) and whose organizations orgs were credited 100 units each.
type clusterLedger struct {
	cluster *localstack.RedisCluster
	dbURL   string
	ledger  *ledgertest.Ledger
	svc     ledgerv1.LedgerServiceClient
	probe   *probe
}

// startClusterCached starts a clusterLedger. The cluster tests do not run in parallel: six
// servers and their failovers each would starve the timing of the parallel fault tests on a
// small machine; run alone, before them, they don't.
func startClusterCached(t *testing.T, orgs ...string) *clusterLedger {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rc, err := localstack.StartRedisCluster(ctx, localstack.RedisClusterConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Stop(context.Background()) })
	c := &clusterLedger{cluster: rc, dbURL: testenv.PostgresURL(t)}
	c.ledger = ledgertest.Start(t, ledgertest.Options{DatabaseURL: c.dbURL, RedisURL: rc.URL(), Metrics: true})
	c.svc = c.ledger.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	c.probe = newProbe(t, rc.URL(), c.dbURL)
	for _, org := range orgs {
		credit(t, c.ledger.Client(t, ledgertest.OpsToken(t)), org, 100*unit, "seed")
	}
	for _, org := range orgs {
		c.probe.waitCached(t, c.ledger, c.svc, org, 100*unit)
	}
	return c
}

// master returns the node serving org's key now.
func (c *clusterLedger) master(t *testing.T, org string) *localstack.Redis {
	t.Helper()
	m, err := c.probe.rdb.(*redis.ClusterClient).MasterForKey(t.Context(), balancecache.Key(org))
	require.NoError(t, err)
	n := c.cluster.Node(m.Options().Addr)
	require.NotNil(t, n)
	return n
}

// killMaster kills the master serving org and waits until its replica has taken over.
func (c *clusterLedger) killMaster(t *testing.T, org string) {
	t.Helper()
	m := c.master(t, org)
	require.NoError(t, m.Kill(t.Context()))
	require.NoError(t, c.cluster.WaitHealthy(t.Context()))
	c.probe.rdb.(*redis.ClusterClient).ReloadState(t.Context()) // the probe reads the new master
}

// orgsOnMasters returns n organization ids whose keys spread over every master.
func orgsOnMasters(n int) []string {
	orgs := make([]string, n)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("org-%d", i)
	}
	return orgs
}

// TestCluster_CacheServesFromEveryMaster: on a cluster, Authorize is answered from the cache
// for organizations on every master, each org's entry on its slot's master, and an older
// version never replaces a newer one there either.
func TestCluster_CacheServesFromEveryMaster(t *testing.T) {
	orgs := orgsOnMasters(12)
	c := startClusterCached(t, orgs...)
	masters := map[string]bool{}
	for _, org := range orgs {
		masters[c.master(t, org).Addr()] = true
		requireNeverAllowed(t, c.svc, org, 100*unit+1, 100*unit, 3)
	}
	require.Len(t, masters, 3, "the organizations' keys spread over the three masters")

	var changes atomic.Int64
	cache, err := balancecache.New(c.probe.rdb, balancecache.Config{TTL: time.Hour, Timeout: time.Second, ReadTimeout: time.Second, OnNewServer: func() { changes.Add(1) }})
	require.NoError(t, err)
	requireNewerWins(t, cache, c.probe.rdb, "fresh-org")
	require.Equal(t, int64(1), changes.Load(), "the first read from a server reports it")
	_, _, err = cache.GetMany(t.Context(), orgs)
	require.NoError(t, err)
	require.Equal(t, int64(3), changes.Load(), "each master is reported once")
}

// TestCluster_FailoverToALaggingReplica: a master dies before its replica got its last cache
// write, and the replica takes over with the older, higher balance stamped with the current
// epoch. Authorize must not answer from it: the first read from the promoted replica retires
// the cache.
func TestCluster_FailoverToALaggingReplica(t *testing.T) {
	orgs := orgsOnMasters(6)
	c := startClusterCached(t, orgs...)
	victim := orgs[0]
	_, err := c.svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: victim, Amount: usd(40 * unit), IdempotencyKey: "spend"})
	require.NoError(t, err)
	c.probe.waitCached(t, c.ledger, c.svc, victim, 60*unit)
	epoch := c.probe.epoch(t)

	// The replica lags by the last cache write: it gets the entry as it was before the debit
	// (balance 100, the version before, the current stamp), the master then gets the new one
	// back alone (a script whose effects are not replicated).
	key := balancecache.Key(victim)
	cur, err := c.probe.rdb.Dump(t.Context(), key).Result()
	require.NoError(t, err)
	v, err := c.probe.rdb.HGet(t.Context(), key, "v").Int64()
	require.NoError(t, err)
	require.NoError(t, c.probe.rdb.HSet(t.Context(), key, "v", v-1, "b", int64(100*unit)).Err())
	m, err := c.probe.rdb.(*redis.ClusterClient).MasterForKey(t.Context(), key)
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Wait(t.Context(), 1, 10*time.Second).Val(), "precondition: the replica has the old entry")
	require.NoError(t, c.probe.rdb.Eval(t.Context(), `redis.set_repl(redis.REPL_NONE)
return redis.call('RESTORE', KEYS[1], 0, ARGV[1], 'REPLACE')`, []string{key}, cur).Err())
	b, _, ok := c.probe.entry(t, victim)
	require.True(t, ok)
	require.Equal(t, 60*unit, b, "precondition: the master holds the new entry")

	// An organization without account on the same master: its Authorize reads the cache and
	// writes nothing back (a miss without account is not cached).
	neighbour := ""
	for i := 0; neighbour == ""; i++ {
		if org := fmt.Sprintf("nobody-%d", i); c.master(t, org) == c.master(t, victim) {
			neighbour = org
		}
	}
	c.killMaster(t, victim)
	b, stamp, ok := c.probe.entry(t, victim)
	require.True(t, ok)
	require.Equal(t, 100*unit, b, "precondition: the promoted replica holds the old, higher balance")
	require.Equal(t, epoch, stamp, "precondition: stamped with the epoch that is still current")
	require.Equal(t, epoch, c.probe.epoch(t), "precondition: nothing bumped the epoch during the failover")

	// The ledger finds the new master through the neighbour's calls, without touching the
	// victim's entry (a failed call of the victim's would rebuild it).
	require.Eventually(t, func() bool {
		misses := metric(t, c.ledger.MetricsURL, "tally_ledger_authorize_source_total", `reason="miss",source="db"`)
		requireNeverAllowed(t, c.svc, neighbour, 1, 0, 1)
		return metric(t, c.ledger.MetricsURL, "tally_ledger_authorize_source_total", `reason="miss",source="db"`) > misses
	}, waitFor, tick, "the ledger reads from the promoted replica")
	b, _, ok = c.probe.entry(t, victim)
	require.True(t, ok)
	require.Equal(t, 100*unit, b, "precondition: the old entry is still there")
	requireNeverAllowed(t, c.svc, victim, 90*unit, 60*unit, 50)
	require.Greater(t, c.probe.epoch(t), epoch, "the read from the promoted replica bumped the epoch")
	require.Positive(t, metric(t, c.ledger.MetricsURL, "tally_ledger_cache_invalidations_total", `reason="redis_server_changed"`))
	c.probe.waitCached(t, c.ledger, c.svc, victim, 60*unit)
	requireNeverAllowed(t, c.svc, victim, 90*unit, 60*unit, 5)
}

// TestCluster_MasterFailoverMidLoad: callers Authorize then Debit on organizations over every
// master while one master is killed and its replica takes over. No Authorize answers from a
// state older than the acknowledged debits (the overspend stays within the calls in flight),
// every acknowledged debit is in the balance, the balance equals the postings, and the cache
// serves again afterwards.
func TestCluster_MasterFailoverMidLoad(t *testing.T) {
	orgs := orgsOnMasters(6)
	c := startClusterCached(t, orgs...)
	const perOrg = 3
	acked := make([]atomic.Int64, len(orgs))
	var total, seq atomic.Int64
	var wg sync.WaitGroup
	for i, org := range orgs {
		for range perOrg {
			wg.Go(func() {
				for {
					a, err := c.svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: org, Amount: usd(unit)})
					if !assertNoErr(t, err) || !a.GetAllowed() {
						return
					}
					_, err = c.svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(unit), IdempotencyKey: fmt.Sprintf("c-%d", seq.Add(1))})
					if !assertNoErr(t, err) {
						return
					}
					acked[i].Add(1)
					total.Add(1)
				}
			})
		}
	}
	limit := int64(len(orgs) * 100)
	waitTotal := func(n int64) {
		target := total.Load() + n
		require.Eventually(t, func() bool { return total.Load() >= min(target, limit) }, waitFor, tick)
	}
	waitTotal(60)
	before := total.Load()
	c.killMaster(t, orgs[0])
	require.Less(t, before, limit-60, "the failover happened mid-load")
	wg.Wait()

	ops := c.ledger.Client(t, ledgertest.OpsToken(t))
	for i, org := range orgs {
		got := nanos(t, balance(t, ops, org).GetBalance())
		require.Equal(t, 100*unit-money.Nanos(acked[i].Load())*unit, got, "every acknowledged debit of %s is in its balance", org)
		require.GreaterOrEqual(t, got, -perOrg*unit, "the overspend of %s is bounded by its calls in flight", org)
	}
	requireBalanced(t, c.dbURL)
	for _, org := range orgs {
		c.probe.waitCached(t, c.ledger, c.svc, org, 100*unit-money.Nanos(acked[orgIndex(orgs, org)].Load())*unit)
	}
}

func orgIndex(orgs []string, org string) int {
	for i, o := range orgs {
		if o == org {
			return i
		}
	}
	return -1
}
