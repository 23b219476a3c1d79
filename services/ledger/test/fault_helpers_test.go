package test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/store"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

const (
	waitFor = 15 * time.Second
	tick    = 5 * time.Millisecond
)

// cachedLedger is a ledger on a Redis and a database of its own whose organization org was
// credited 100 units and is served from the cache: where the cache-fault tests start.
type cachedLedger struct {
	rds    *localstack.Redis
	dbURL  string
	ledger *ledgertest.Ledger
	svc    ledgerv1.LedgerServiceClient
	probe  *probe
}

// startCached starts a cachedLedger with opts (its database, Redis and metrics set here).
func startCached(t *testing.T, org string, opts ledgertest.Options) *cachedLedger {
	t.Helper()
	c := &cachedLedger{rds: testenv.Redis(t), dbURL: testenv.PostgresURL(t)}
	opts.DatabaseURL, opts.RedisURL, opts.Metrics = c.dbURL, c.rds.URL(), true
	c.ledger = ledgertest.Start(t, opts)
	c.svc = c.ledger.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	c.probe = newProbe(t, c.rds.URL(), c.dbURL)
	credit(t, c.ledger.Client(t, ledgertest.OpsToken(t)), org, 100*unit, "seed")
	c.probe.waitCached(t, c.ledger, c.svc, org, 100*unit)
	return c
}

// probe looks at the ledger's cache from outside: the Redis entries and PostgreSQL's epoch.
type probe struct {
	rdb  redis.UniversalClient
	pool *pgxpool.Pool
}

func newProbe(t *testing.T, redisURL, dbURL string) *probe {
	t.Helper()
	var rdb redis.UniversalClient
	if balancecache.IsClusterURL(redisURL) {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(strings.TrimPrefix(redisURL, "redis+cluster://"), ",")})
	} else {
		opts, err := redis.ParseURL(redisURL)
		require.NoError(t, err)
		rdb = redis.NewClient(opts)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	pool, err := pgxpool.New(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &probe{rdb: rdb, pool: pool}
}

func (p *probe) epoch(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var e int64
	require.NoError(t, p.pool.QueryRow(ctx, `SELECT epoch FROM ledger.cache_epoch`).Scan(&e))
	return e
}

// entry reads org's cache entry: its balance and epoch stamp (ok false on a miss).
func (p *probe) entry(t *testing.T, org string) (bal money.Nanos, epoch int64, ok bool) {
	t.Helper()
	vals, err := p.rdb.HMGet(t.Context(), balancecache.Key(org), "b", "ep").Result()
	require.NoError(t, err)
	if vals[0] == nil || vals[1] == nil {
		return 0, 0, false
	}
	b, err := strconv.ParseInt(vals[0].(string), 10, 64)
	require.NoError(t, err)
	e, err := strconv.ParseInt(vals[1].(string), 10, 64)
	require.NoError(t, err)
	return money.Nanos(b), e, true
}

// waitCached waits until l answers Authorize for org from a cache entry holding bal under the
// current epoch.
func (p *probe) waitCached(t *testing.T, l *ledgertest.Ledger, svc ledgerv1.LedgerServiceClient, org string, bal money.Nanos) {
	t.Helper()
	require.NotEmpty(t, l.MetricsURL, "start the ledger with Options.Metrics")
	require.Eventually(t, func() bool {
		before := metric(t, l.MetricsURL, "tally_ledger_authorize_source_total", `reason="fresh",source="cache"`)
		// A stale entry is rebuilt by this call; the next iteration may then be served from it.
		a, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: org, Amount: usd(0)})
		require.NoError(t, err)
		served := metric(t, l.MetricsURL, "tally_ledger_authorize_source_total", `reason="fresh",source="cache"`) > before
		b, e, ok := p.entry(t, org)
		return served && nanos(t, a.GetAvailable()) == bal && ok && b == bal && e == p.epoch(t)
	}, waitFor, tick, "the cache holds %s for %s under the current epoch", bal, org)
}

// requireNeverAllowed asks Authorize for amount n times and requires each answer to refuse it
// and to report exactly want available.
func requireNeverAllowed(t *testing.T, svc ledgerv1.LedgerServiceClient, org string, amount, want money.Nanos, n int) {
	t.Helper()
	for i := range n {
		a, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: org, Amount: usd(amount)})
		require.NoError(t, err)
		require.False(t, a.GetAllowed(), "Authorize %d failed open: %s allowed on a true available of %s", i, amount, want)
		require.Equal(t, want, nanos(t, a.GetAvailable()), "Authorize %d", i)
	}
}

// crashedReplica commits requests straight through the store, like a ledger replica killed
// between its commit and its cache write: PostgreSQL changes, Redis never hears of it.
func crashedReplica(t *testing.T, dbURL string, reqs ...*ledger.Request) {
	t.Helper()
	pool, err := pg.Connect(t.Context(), dbURL, "ledger", 2)
	require.NoError(t, err)
	defer pool.Close()
	st, err := store.New(pool, store.Config{})
	require.NoError(t, err)
	batches, err := app.NewBatches(app.BatchesConfig{Store: st})
	require.NoError(t, err)
	applied, err := batches.Apply(t.Context(), reqs)
	require.NoError(t, err)
	for _, o := range applied.Outcomes {
		require.NoError(t, o.Err)
	}
}

func debitReq(org string, n money.Nanos, key string) *ledger.Request {
	return &ledger.Request{Op: ledger.OpDebit, OrgID: org, Amount: n, Currency: "USD", IdempotencyKey: key, Actor: "test"}
}

// metric reads a counter or gauge from a replica's /metrics; labels as name="value" pairs in
// alphabetical order of names, e.g. `reason="stale",source="db"`.
func metric(t *testing.T, url, name, labels string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	require.NoError(t, sc.Err())
	require.Failf(t, "metric not found", "%s", want)
	return 0
}
