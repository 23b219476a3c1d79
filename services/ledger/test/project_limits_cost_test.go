package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/balancecache"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/store"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// statements counts PostgreSQL's statements on a private cluster with pg_stat_statements.
type statements struct{ pool *pgxpool.Pool }

// startCounted starts a private PostgreSQL with pg_stat_statements loaded (a restart) and a
// ledger on it (with its own Redis and metrics).
func startCounted(t *testing.T) (*ledgertest.Ledger, *statements) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	db := testenv.PrivatePostgres(t)
	admin, err := pgxpool.New(ctx, db.URL())
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
	require.NoError(t, err)
	admin.Close()
	require.NoError(t, db.Restart(ctx))
	pool, err := pgxpool.New(ctx, db.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	require.NoError(t, err)
	l := ledgertest.Start(t, ledgertest.Options{DatabaseURL: db.URL(), Metrics: true})
	return l, &statements{pool: pool}
}

// projectLimitReads is how many statements reading project_limits ran so far.
func (s *statements) projectLimitReads(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var n int64
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
WHERE query LIKE '%FROM project_limits%' AND query NOT LIKE '%pg_stat_statements%'`).Scan(&n))
	return n
}

// TestAuthorizeProjectAnsweredFromTheCache: Authorize naming a project is answered from the
// balance cache, which carries the organization's project limits and their charges of the
// month — no statement reads project_limits — and refuses once the project's limit is reached,
// from the cache still.
func TestAuthorizeProjectAnsweredFromTheCache(t *testing.T) {
	t.Parallel()
	l, stmts := startCounted(t)
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "cachedprojects"
	admin := l.Client(t, ledgertest.Token(t, adminClaims(org)))
	credit(t, ops, org, 100*unit, "seed")
	setProjectLimit(t, admin, org, "alpha", 10*unit)
	setProjectLimit(t, admin, org, "beta", 50*unit)
	_, err := svc.Debit(t.Context(), projectDebit(org, "alpha", "a-9", 9*unit, true))
	require.NoError(t, err)

	authz := func(project string, n money.Nanos) *ledgerv1.AuthorizeResponse {
		r, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: org, Amount: usd(n), Project: project})
		require.NoError(t, err)
		return r
	}
	fromCache := func() float64 {
		return metric(t, l.MetricsURL, "tally_ledger_authorize_source_total", `reason="fresh",source="cache"`) +
			metric(t, l.MetricsURL, "tally_ledger_authorize_source_total", `reason="pending",source="cache"`)
	}
	require.Eventually(t, func() bool {
		before := fromCache()
		authz("alpha", unit)
		return fromCache() > before
	}, waitFor, tick, "Authorize naming a project is answered from the cache")

	cases := []struct {
		name    string
		project string
		amount  money.Nanos
		allowed bool
	}{
		{"within the project's limit", "alpha", unit, true},
		{"past the project's limit", "alpha", 2 * unit, false},
		{"another project's limit", "beta", 50 * unit, true},
		{"past another project's limit", "beta", 51 * unit, false},
		{"a project without a limit", "gamma", 90 * unit, true},
		{"no project", "", 90 * unit, true},
	}
	check := func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				reads, cached := stmts.projectLimitReads(t), fromCache()
				r := authz(tc.project, tc.amount)
				require.Equal(t, tc.allowed, r.GetAllowed())
				if !tc.allowed {
					require.Equal(t, "SPEND_LIMIT_REACHED", r.GetDenialReason())
				}
				require.Equal(t, reads, stmts.projectLimitReads(t), "no statement read project_limits")
				require.Equal(t, cached+1, fromCache(), "answered from the cache")
			})
		}
	}
	t.Run("below the limit", check)

	// The charge that reaches alpha's limit: the next Authorize refuses it, from the cache.
	_, err = svc.Debit(t.Context(), projectDebit(org, "alpha", "a-1", unit, true))
	require.NoError(t, err)
	cases[0].allowed = false
	t.Run("at the limit", check)

	// A higher limit is seen at once (the change is a new version of the entry).
	setProjectLimit(t, admin, org, "alpha", 11*unit)
	cases[0].allowed = true
	t.Run("after raising the limit", check)

	// An entry without the project limits (as a ledger replica that does not cache them writes
	// it) still answers Authorize without a project, and makes one naming a project read
	// PostgreSQL: never an answer from limits the entry may not hold.
	p := newProbe(t, l.RedisURL, l.DatabaseURL)
	require.NoError(t, p.rdb.HSet(t.Context(), balancecache.Key(org), "pl", "").Err())
	unknown := func() float64 {
		return metric(t, l.MetricsURL, "tally_ledger_authorize_source_total", `reason="projects_unknown",source="db"`)
	}
	reads, before, cached := stmts.projectLimitReads(t), unknown(), fromCache()
	require.True(t, authz("", 90*unit).GetAllowed())
	require.Equal(t, cached+1, fromCache())
	r := authz("alpha", 2*unit)
	require.False(t, r.GetAllowed())
	require.Equal(t, "SPEND_LIMIT_REACHED", r.GetDenialReason())
	require.Equal(t, before+1, unknown())
	require.Greater(t, stmts.projectLimitReads(t), reads, "read from PostgreSQL")
}

// TestBatchReadsProjectLimitsOnlyWhenSet: a batch of organizations without project limits runs
// no statement for them; an organization's limits are read under its lock when it has some,
// also by a replica that has not seen them set (another store here) and for a capture that
// names only its hold, and not once they are all removed.
func TestBatchReadsProjectLimitsOnlyWhenSet(t *testing.T) {
	t.Parallel()
	l, stmts := startCounted(t)
	ops := l.Client(t, ledgertest.OpsToken(t))
	const org = "batchprojects"
	admin := l.Client(t, ledgertest.Token(t, adminClaims(org)))
	credit(t, ops, org, 100*unit, "seed")
	for i := range 3 {
		credit(t, ops, fmt.Sprintf("plain-%d", i), 100*unit, "seed")
	}
	pool, err := pg.Connect(t.Context(), l.DatabaseURL, "ledger", 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	batches := storeBatches(t, pool) // another replica's store: it saw no limit set
	apply := func(t *testing.T, reqs ...*ledger.Request) []error {
		t.Helper()
		applied, err := batches.Apply(t.Context(), reqs)
		require.NoError(t, err)
		errs := make([]error, len(applied.Outcomes))
		for i, o := range applied.Outcomes {
			errs[i] = o.Err
		}
		return errs
	}

	t.Run("organizations without project limits", func(t *testing.T) {
		before := stmts.projectLimitReads(t)
		for i := range 5 {
			errs := apply(t, debit("plain-0", "alpha", fmt.Sprintf("p0-%d", i), unit), debit("plain-1", "", fmt.Sprintf("p1-%d", i), unit),
				debit("plain-2", "beta", fmt.Sprintf("p2-%d", i), unit), debit(org, "beta", fmt.Sprintf("o-%d", i), unit))
			require.Equal(t, []error{nil, nil, nil, nil}, errs)
		}
		require.Equal(t, before, stmts.projectLimitReads(t), "no statement reads project_limits")
	})

	setProjectLimit(t, admin, org, "alpha", 10*unit)
	t.Run("a limit set by another replica", func(t *testing.T) {
		before := stmts.projectLimitReads(t)
		errs := apply(t, debit(org, "alpha", "over", 11*unit), debit(org, "alpha", "within", 4*unit), debit("plain-0", "alpha", "plain", 11*unit))
		requireProjectLimitError(t, errs[0], "alpha")
		require.NoError(t, errs[1])
		require.NoError(t, errs[2], "another organization's project is not limited")
		require.Equal(t, before+1, stmts.projectLimitReads(t), "read once, after the lock")
		// Seen with the lock: read in the locking round trip from now on.
		errs = apply(t, debit(org, "alpha", "past", 7*unit), debit(org, "beta", "beta", 7*unit))
		requireProjectLimitError(t, errs[0], "alpha")
		require.NoError(t, errs[1])
	})

	t.Run("a capture naming only its hold", func(t *testing.T) {
		setProjectLimit(t, admin, org, "alpha", 20*unit) // 4 charged: 16 left
		res, err := batches.Apply(t.Context(), []*ledger.Request{{Op: ledger.OpReserve, OrgID: org, Amount: 5 * unit, Currency: "USD",
			TTL: time.Minute, IdempotencyKey: "hold", Actor: "test", Metadata: map[string]string{ledger.MetaProject: "alpha"}}})
		require.NoError(t, err)
		require.NoError(t, res.Outcomes[0].Err)
		hold := res.Outcomes[0].Result.Hold.ID
		// Through a store that knows nothing of the organization.
		res, err = storeBatches(t, pool).Apply(t.Context(), []*ledger.Request{{Op: ledger.OpCapture, HoldID: hold, Amount: 5 * unit, IdempotencyKey: "cap",
			Actor: "test", Metadata: map[string]string{ledger.MetaProject: "alpha"}}})
		require.NoError(t, err)
		require.NoError(t, res.Outcomes[0].Err)
		require.Equal(t, 9*unit, projectSpend(t, admin, org, "alpha"), "the capture is counted")
		errs := apply(t, debit(org, "alpha", "after-capture", 12*unit))
		requireProjectLimitError(t, errs[0], "alpha")
	})

	t.Run("every limit removed", func(t *testing.T) {
		setProjectLimit(t, admin, org, "alpha", 0)
		errs := apply(t, debit(org, "alpha", "unlimited", 50*unit))
		require.NoError(t, errs[0])
		before := stmts.projectLimitReads(t)
		errs = apply(t, debit(org, "alpha", "unlimited-2", unit))
		require.NoError(t, errs[0])
		require.Equal(t, before, stmts.projectLimitReads(t), "no statement reads project_limits")
	})
}

// storeBatches writes batches through a store of its own over pool, as another replica does.
func storeBatches(t *testing.T, pool *pgxpool.Pool) *app.Batches {
	t.Helper()
	st, err := store.New(pool, store.Config{})
	require.NoError(t, err)
	batches, err := app.NewBatches(app.BatchesConfig{Store: st})
	require.NoError(t, err)
	return batches
}

// debit is a require_funds debit of project ("" for none).
func debit(org, project, key string, n money.Nanos) *ledger.Request {
	r := debitReq(org, n, key)
	r.RequireFunds = true
	if project != "" {
		r.Metadata = map[string]string{ledger.MetaProject: project}
	}
	return r
}

func requireProjectLimitError(t *testing.T, err error, project string) {
	t.Helper()
	require.ErrorIs(t, err, ledger.ErrSpendLimitReached)
	var pe *ledger.ProjectLimitError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, project, pe.Project)
}

// projectSpend is the month's charges of project, as ListProjectLimits reports them.
func projectSpend(t *testing.T, c ledgerv1.LedgerServiceClient, org, project string) money.Nanos {
	t.Helper()
	list, err := c.ListProjectLimits(t.Context(), &ledgerv1.ListProjectLimitsRequest{OrgId: org})
	require.NoError(t, err)
	for _, p := range list.GetProjectLimits() {
		if p.GetProject() == project {
			return nanos(t, p.GetMonthSpend())
		}
	}
	require.Failf(t, "no project limit", "%s", project)
	return 0
}
