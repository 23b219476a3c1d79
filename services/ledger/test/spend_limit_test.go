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
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/clock"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func adminClaims(org string) auth.Claims {
	return auth.Claims{Subject: "admin-of-" + org, OrgID: org, Email: "a@example.com", Roles: []auth.Role{auth.RoleAdmin}}
}

func setSpendLimit(t testing.TB, c ledgerv1.LedgerServiceClient, org string, limit money.Nanos, pct int32) *ledgerv1.SpendLimitStatus {
	t.Helper()
	r, err := c.SetSpendLimit(t.Context(), &ledgerv1.SetSpendLimitRequest{OrgId: org, Limit: usd(limit), AlertPercent: pct})
	require.NoError(t, err)
	return r.GetSpendLimit()
}

func spendLimit(t testing.TB, c ledgerv1.LedgerServiceClient, org string) *ledgerv1.SpendLimitStatus {
	t.Helper()
	r, err := c.GetSpendLimit(t.Context(), &ledgerv1.GetSpendLimitRequest{OrgId: org})
	require.NoError(t, err)
	return r.GetSpendLimit()
}

// requireSpendLimitReached checks err is the refusal a backend can show its user: FailedPrecondition
// with the ErrorInfo reason SPEND_LIMIT_REACHED.
func requireSpendLimitReached(t testing.TB, err error) {
	t.Helper()
	requireCode(t, err, codes.FailedPrecondition)
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			require.Equal(t, "SPEND_LIMIT_REACHED", info.GetReason())
			require.Equal(t, "tally", info.GetDomain())
			return
		}
	}
	t.Fatalf("no ErrorInfo in %v", st.Details())
}

func authorize(t testing.TB, c ledgerv1.LedgerServiceClient, org string, n money.Nanos) *ledgerv1.AuthorizeResponse {
	t.Helper()
	r, err := c.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: org, Amount: usd(n)})
	require.NoError(t, err)
	return r
}

// spendAlerts counts the spend alerts committed to the outbox for org.
func spendAlerts(t testing.TB, dbURL, org string) int {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM ledger.events WHERE org_id = $1 AND kind = 'spend_alert'`, org).Scan(&n))
	return n
}

// TestSpendLimitReachedMidLoad runs require_funds debits and usage debits (no require_funds) at
// once against a limit: the limit is never passed by a require_funds debit, every refusal says
// why, recorded usage is never refused, the month's spending is exactly what was charged, the
// alert fires once, and Authorize (answered from the Redis cache) refuses afterwards.
func TestSpendLimitReachedMidLoad(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	admin := l.Client(t, ledgertest.Token(t, adminClaims("capped")))
	member := l.Client(t, ledgertest.Token(t, memberClaims("capped")))
	const org = "capped"
	credit(t, ops, org, 1000*unit, "seed")

	st := setSpendLimit(t, admin, org, 100*unit, 80)
	require.Equal(t, 100*unit, nanos(t, st.GetLimit()))
	require.Equal(t, int32(80), st.GetAlertPercent())
	require.Zero(t, nanos(t, st.GetMonthSpend()))
	require.Equal(t, time.Now().UTC().Format("2006-01"), st.GetMonth())
	// Members read the limit but may not change it.
	require.Equal(t, 100*unit, nanos(t, spendLimit(t, member, org).GetLimit()))
	_, err := member.SetSpendLimit(t.Context(), &ledgerv1.SetSpendLimitRequest{OrgId: org, Limit: usd(unit)})
	requireCode(t, err, codes.PermissionDenied)
	require.True(t, authorize(t, svc, org, unit).GetAllowed())

	const funded, usage = 150, 20 // each of unit
	var wg sync.WaitGroup
	errs := make([]error, funded+usage)
	for i := range errs {
		wg.Go(func() {
			req := &ledgerv1.DebitRequest{OrgId: org, Amount: usd(unit), IdempotencyKey: fmt.Sprintf("call-%d", i), RequireFunds: i < funded}
			_, errs[i] = svc.Debit(t.Context(), req)
		})
	}
	wg.Wait()
	var accepted, refused atomic.Int64
	for i, err := range errs {
		switch {
		case i >= funded:
			require.NoError(t, err, "usage that already happened is recorded")
		case err == nil:
			accepted.Add(1)
		default:
			requireSpendLimitReached(t, err)
			refused.Add(1)
		}
	}
	// A require_funds debit is refused only when it would pass the limit, so the accepted ones and
	// the usage debits committed before them fill it: between 100-usage and 100 are accepted.
	require.Equal(t, int64(funded), accepted.Load()+refused.Load())
	require.LessOrEqual(t, accepted.Load(), int64(100))
	require.GreaterOrEqual(t, accepted.Load(), int64(100-usage))
	spent := money.Nanos(accepted.Load()+usage) * unit
	st = spendLimit(t, member, org)
	require.Equal(t, spent, nanos(t, st.GetMonthSpend()), "the month's spending is exactly what was charged")
	require.Equal(t, 1000*unit-spent, nanos(t, balance(t, ops, org).GetBalance()))
	require.True(t, st.GetReached())
	require.True(t, st.GetAlerted())
	require.Zero(t, nanos(t, st.GetRemaining()))
	require.Equal(t, 1, spendAlerts(t, l.DatabaseURL, org), "one alert for the crossing, whatever the concurrency")

	// Reached: Authorize refuses with the reason, whatever the amount, though credits remain.
	for _, n := range []money.Nanos{0, 1, unit} {
		a := authorize(t, svc, org, n)
		require.False(t, a.GetAllowed(), "amount %d", n)
		require.Equal(t, "SPEND_LIMIT_REACHED", a.GetDenialReason())
	}
	_, err = svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: org, Amount: usd(unit), IdempotencyKey: "hold-1"})
	requireSpendLimitReached(t, err)
	// Usage that already happened is still recorded and counted.
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(unit), IdempotencyKey: "late-usage"})
	require.NoError(t, err)
	require.Equal(t, spent+unit, nanos(t, spendLimit(t, member, org).GetMonthSpend()))

	requireLimitChangesApplyAtOnce(t, l, org, spent+unit)
}

// requireLimitChangesApplyAtOnce raises the limit of org, which spent spent this month, by 10
// units, spends it, then removes the limit: each change holds for the very next call.
func requireLimitChangesApplyAtOnce(t *testing.T, l *ledgertest.Ledger, org string, spent money.Nanos) {
	t.Helper()
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	admin := l.Client(t, ledgertest.Token(t, adminClaims(org)))
	// A higher limit lets calls through again at once (no Authorize from the old limit), and re-arms
	// the alert, here at 100% of it.
	st := setSpendLimit(t, admin, org, spent+10*unit, 100)
	require.False(t, st.GetReached())
	require.False(t, st.GetAlerted())
	a := authorize(t, svc, org, 10*unit)
	require.True(t, a.GetAllowed(), "reason %q", a.GetDenialReason())
	require.False(t, authorize(t, svc, org, 10*unit+1).GetAllowed(), "an amount that would pass the limit")
	_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(10*unit + 1), IdempotencyKey: "too-much", RequireFunds: true})
	requireSpendLimitReached(t, err)
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(10 * unit), IdempotencyKey: "exactly", RequireFunds: true})
	require.NoError(t, err)
	require.Equal(t, 2, spendAlerts(t, l.DatabaseURL, org), "the new limit's crossing alerts once more")
	require.False(t, authorize(t, svc, org, 0).GetAllowed())

	// Insufficient funds keeps its own reason.
	broke := "capped-broke"
	credit(t, ops, broke, unit, "seed-broke")
	a = authorize(t, svc, broke, 2*unit)
	require.False(t, a.GetAllowed())
	require.Equal(t, "INSUFFICIENT_FUNDS", a.GetDenialReason())

	// Removing the limit lifts the stop.
	st = setSpendLimit(t, admin, org, 0, 0)
	require.Zero(t, nanos(t, st.GetLimit()))
	require.True(t, authorize(t, svc, org, unit).GetAllowed())
	requireBalanced(t, l.DatabaseURL)
}

// TestSpendLimitReplaysDoNotCount retries debits and captures with their idempotency keys: the
// month's spending counts each charge once.
func TestSpendLimitReplaysDoNotCount(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "replayed"
	credit(t, ops, org, 100*unit, "seed")
	setSpendLimit(t, ops, org, 10*unit, 50)

	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(3 * unit), IdempotencyKey: "same-call", RequireFunds: true})
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	hold, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: org, Amount: usd(2 * unit), IdempotencyKey: "hold"})
	require.NoError(t, err)
	for range 3 {
		_, err := svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: hold.GetHold().GetId(), Amount: usd(2 * unit), IdempotencyKey: "capture"})
		require.NoError(t, err)
	}
	st := spendLimit(t, ops, org)
	require.Equal(t, 5*unit, nanos(t, st.GetMonthSpend()))
	require.True(t, st.GetAlerted(), "5 of 10 is the 50% alert")
	require.Equal(t, 1, spendAlerts(t, l.DatabaseURL, org))
	require.Equal(t, 95*unit, nanos(t, balance(t, ops, org).GetBalance()))
}

// TestSpendLimitMonthRollover moves the business clock past the end of a UTC month: the new month
// starts at zero, calls go through again, and its own crossing alerts again.
func TestSpendLimitMonthRollover(t *testing.T) {
	t.Parallel()
	clk := clock.NewManual(time.Date(2027, time.January, 31, 23, 59, 0, 0, time.UTC))
	l := ledgertest.Start(t, ledgertest.Options{Now: clk.Now})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "monthly"
	credit(t, ops, org, 100*unit, "seed")
	setSpendLimit(t, ops, org, 5*unit, 100)

	_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(5 * unit), IdempotencyKey: "jan", RequireFunds: true})
	require.NoError(t, err)
	require.False(t, authorize(t, svc, org, 0).GetAllowed())
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(1), IdempotencyKey: "jan-2", RequireFunds: true})
	requireSpendLimitReached(t, err)
	st := spendLimit(t, ops, org)
	require.Equal(t, "2027-01", st.GetMonth())
	require.True(t, st.GetReached())
	require.Equal(t, 1, spendAlerts(t, l.DatabaseURL, org))

	clk.Set(time.Date(2027, time.February, 1, 0, 0, 0, 0, time.UTC))
	// The cached entry still holds January's spending: it is January's, so February's is zero.
	a := authorize(t, svc, org, 5*unit)
	require.True(t, a.GetAllowed(), "reason %q", a.GetDenialReason())
	st = spendLimit(t, ops, org)
	require.Equal(t, "2027-02", st.GetMonth())
	require.Zero(t, nanos(t, st.GetMonthSpend()))
	require.False(t, st.GetAlerted())
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(5 * unit), IdempotencyKey: "feb", RequireFunds: true})
	require.NoError(t, err)
	require.Equal(t, 2, spendAlerts(t, l.DatabaseURL, org), "February's crossing alerts too")
	require.False(t, authorize(t, svc, org, 0).GetAllowed())
}

// TestSpendAlertOnTheEventStream reads the alert as notifications does: a spend-alert event with
// the month's spending and the limit.
func TestSpendAlertOnTheEventStream(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	const org = "streamed"
	credit(t, ops, org, 100*unit, "seed")
	_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(8 * unit), IdempotencyKey: "d1"})
	require.NoError(t, err)
	// A limit the month has already passed alerts at once.
	st := setSpendLimit(t, ops, org, 10*unit, 75)
	require.True(t, st.GetAlerted())

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := ops.WatchEvents(ctx, &ledgerv1.WatchEventsRequest{OrgId: org})
	require.NoError(t, err)
	for {
		r, err := stream.Recv()
		require.NoError(t, err)
		if e := r.GetEvent(); e.GetKind() == ledgerv1.EventKind_EVENT_KIND_SPEND_ALERT {
			require.Equal(t, 8*unit, nanos(t, e.GetAmount()))
			require.Equal(t, 10*unit, nanos(t, e.GetSpendLimit()))
			require.Equal(t, 92*unit, nanos(t, e.GetBalance()))
			return
		}
	}
}

func TestSpendLimitValidation(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "valid", unit, "seed")
	for name, req := range map[string]*ledgerv1.SetSpendLimitRequest{
		"negative":          {OrgId: "valid", Limit: usd(-1)},
		"percent above 100": {OrgId: "valid", Limit: usd(unit), AlertPercent: 101},
		"negative percent":  {OrgId: "valid", Limit: usd(unit), AlertPercent: -1},
		"percent no limit":  {OrgId: "valid", AlertPercent: 50},
		"other currency":    {OrgId: "valid", Limit: money.ToProto(unit, "EUR")},
		"bad org":           {OrgId: "", Limit: usd(unit)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ops.SetSpendLimit(t.Context(), req)
			requireCode(t, err, codes.InvalidArgument)
		})
	}
}
