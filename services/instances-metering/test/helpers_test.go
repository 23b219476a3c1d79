// Package test drives the instances-metering service end to end: a real ledger, a real pricing
// service, PostgreSQL and gRPC over 127.0.0.1, with billing periods of about a second.
package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/instances-metering/meteringtest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	unit = money.Nanos(money.NanosPerUnit)
	// period is the billing period of the tests.
	period = time.Second
	// a10g is the seed catalog's gpu-a10g-small at 1.20 USD/h: a 1s period costs
	// ceil(1.2e9 / 3600) = 333,334 nanos.
	a10g       = "gpu-a10g-small"
	a10gPeriod = money.Nanos(333_334)
	// wait bounds asynchronous waits: a correctness bound, not a performance assertion.
	wait = 60 * time.Second
	tick = 20 * time.Millisecond
)

// stack is a ledger and a pricing service; meters started on it share one database.
type stack struct {
	ledger  *ledgertest.Ledger
	pricing *pricingtest.Pricing
	// ops reads and credits the ledger.
	ops ledgerv1.LedgerServiceClient
	// pool reads the database directly.
	pool *pgxpool.Pool
}

func newStack(t *testing.T) *stack {
	t.Helper()
	l := ledgertest.Start(t, ledgertest.Options{})
	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})
	pool, err := pgxpool.New(t.Context(), l.DatabaseURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &stack{ledger: l, pricing: p, ops: l.Client(t, ledgertest.OpsToken(t)), pool: pool}
}

// meterOptions tune one meter replica.
type meterOptions struct {
	Grace             money.Nanos
	NotificationsAddr string
}

// meter is one running replica of the service.
type meter struct{ *meteringtest.Meter }

// startMeter runs a replica on s's database (schema "instances" beside the ledger's) until Kill
// or the end of the test.
func (s *stack) startMeter(t *testing.T, opts meterOptions) *meter {
	t.Helper()
	out := io.Discard
	if os.Getenv("TALLY_TEST_LOG") != "" {
		out = os.Stderr
	}
	m := meteringtest.Start(t, meteringtest.Options{
		DatabaseURL: s.ledger.DatabaseURL, Secret: ledgertest.Secret,
		LedgerAddr: s.ledger.Addr, PricingAddr: s.pricing.Addr, NotificationsAddr: opts.NotificationsAddr,
		BillingPeriod: period, Grace: opts.Grace,
		Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return &meter{m}
}

// Kill cancels the replica mid-whatever-it-does and waits for it to return.
func (m *meter) Kill(t *testing.T) {
	t.Helper()
	require.NoError(t, m.Stop())
}

func (m *meter) client(t *testing.T, token string) instancesv1.InstanceMeteringServiceClient {
	return m.Client(t, token)
}

// controller is the instance controller's client of m.
func (m *meter) controller(t *testing.T) instancesv1.InstanceMeteringServiceClient {
	return m.client(t, ledgertest.ServiceToken(t, "instance-controller"))
}

func memberToken(t *testing.T, org string) string {
	return ledgertest.Token(t, auth.Claims{Subject: "member-of-" + org, OrgID: org, Roles: []auth.Role{auth.RoleMember}})
}

func (s *stack) credit(t *testing.T, org string, n money.Nanos) {
	t.Helper()
	_, err := s.ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: money.ToProto(n, "USD"),
		IdempotencyKey: fmt.Sprintf("topup-%s-%d", org, time.Now().UnixNano()), Reason: "test top-up"})
	require.NoError(t, err)
}

func nanos(t *testing.T, m interface {
	GetUnits() int64
	GetNanos() int32
}) money.Nanos {
	t.Helper()
	return money.Nanos(m.GetUnits()*money.NanosPerUnit + int64(m.GetNanos()))
}

func (s *stack) balance(t *testing.T, org string) money.Nanos {
	t.Helper()
	b, err := s.ops.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: org})
	require.NoError(t, err)
	return nanos(t, b.GetBalance())
}

// charges returns the ledger's debits of an instance, by period, failing on a period charged twice.
func (s *stack) charges(t *testing.T, org, instanceID string) map[int64]*ledgerv1.Transaction {
	t.Helper()
	out := map[int64]*ledgerv1.Transaction{}
	token := ""
	for {
		page, err := s.ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 500, PageToken: token})
		require.NoError(t, err)
		for _, tx := range page.GetTransactions() {
			if tx.GetKind() != ledgerv1.TransactionKind_TRANSACTION_KIND_DEBIT || tx.GetMetadata()["instance_id"] != instanceID {
				continue
			}
			n, err := strconv.ParseInt(tx.GetMetadata()["period"], 10, 64)
			require.NoError(t, err)
			require.NotContains(t, out, n, "period %d of %s charged twice", n, instanceID)
			require.Equal(t, fmt.Sprintf("rental:%s:%d", instanceID, n), tx.GetIdempotencyKey())
			out[n] = tx
		}
		if token = page.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// startedPeriods is how many periods of a stopped rental started before its stop.
func startedPeriods(r *instancesv1.Rental) int64 {
	d := r.GetStoppedAt().AsTime().Sub(r.GetStartedAt().AsTime())
	p := r.GetBillingPeriod().AsDuration()
	return int64((d + p - 1) / p)
}

// requireChargedExactly checks a stopped rental against the ledger: periods 0..n-1 each charged
// once at the locked period price, n being the periods started before the stop, none charged
// before its start, and the rental's own totals agreeing.
func (s *stack) requireChargedExactly(t *testing.T, r *instancesv1.Rental) {
	t.Helper()
	require.Equal(t, instancesv1.RentalState_RENTAL_STATE_STOPPED, r.GetState())
	n := startedPeriods(r)
	require.Positive(t, n)
	price := nanos(t, r.GetPeriodPrice())
	got := s.charges(t, r.GetOrgId(), r.GetInstanceId())
	periods := make([]int64, 0, len(got))
	for p := range got {
		periods = append(periods, p)
	}
	sort.Slice(periods, func(i, j int) bool { return periods[i] < periods[j] })
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i)
	}
	require.Equal(t, want, periods, "periods charged for %s", r.GetInstanceId())
	start, p := r.GetStartedAt().AsTime(), r.GetBillingPeriod().AsDuration()
	for n, tx := range got {
		require.Equal(t, -price, nanos(t, tx.GetAmount()), "period %d", n)
		require.False(t, tx.GetCreatedAt().AsTime().Before(start.Add(time.Duration(n)*p)), "period %d charged before it started", n)
	}
	require.Equal(t, n, r.GetPeriodsCharged())
	require.Equal(t, price*money.Nanos(n), nanos(t, r.GetTotalCharged()))
	require.Nil(t, r.GetNextPeriodAt())
}

// requireNoDrift checks in PostgreSQL that every running rental's next boundary is
// started_at + periods_charged × period, never a time derived from when a charge happened.
func (s *stack) requireNoDrift(t *testing.T) {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), s.ledger.DatabaseURL)
	require.NoError(t, err)
	defer pool.Close()
	var running, drifted int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*),
count(*) FILTER (WHERE next_charge_at IS DISTINCT FROM started_at + periods_charged * (period_ns / 1000) * interval '1 microsecond')
FROM instances.rentals WHERE state = 'running'`).Scan(&running, &drifted))
	require.Positive(t, running)
	require.Zero(t, drifted, "running rentals whose next boundary drifted")
}

func requireCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code.String(), status.Code(err).String(), "error: %v", err)
}

func start(t *testing.T, c instancesv1.InstanceMeteringServiceClient, instanceID, org, typ string) *instancesv1.Rental {
	t.Helper()
	resp, err := c.StartMetering(t.Context(), &instancesv1.StartMeteringRequest{InstanceId: instanceID, OrgId: org, InstanceType: typ, IdempotencyKey: "start-" + instanceID})
	require.NoError(t, err)
	return resp.GetRental()
}

func stop(t *testing.T, c instancesv1.InstanceMeteringServiceClient, instanceID string) *instancesv1.Rental {
	t.Helper()
	resp, err := c.StopMetering(t.Context(), &instancesv1.StopMeteringRequest{InstanceId: instanceID})
	require.NoError(t, err)
	return resp.GetRental()
}

func get(t *testing.T, c instancesv1.InstanceMeteringServiceClient, instanceID string) *instancesv1.Rental {
	t.Helper()
	resp, err := c.GetRental(t.Context(), &instancesv1.GetRentalRequest{InstanceId: instanceID})
	require.NoError(t, err)
	return resp.GetRental()
}

// waitCharged waits until the rental has at least n periods charged.
func waitCharged(t *testing.T, c instancesv1.InstanceMeteringServiceClient, instanceID string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := c.GetRental(t.Context(), &instancesv1.GetRentalRequest{InstanceId: instanceID})
		return err == nil && resp.GetRental().GetPeriodsCharged() >= n
	}, wait, tick, "%s never reached %d periods", instanceID, n)
}

// watch collects the event stream from after into a channel until the test ends.
func watch(t *testing.T, c instancesv1.InstanceMeteringServiceClient, after int64) <-chan *instancesv1.InstanceEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	stream, err := c.WatchInstanceEvents(ctx, &instancesv1.WatchInstanceEventsRequest{AfterSequence: after})
	require.NoError(t, err)
	ch := make(chan *instancesv1.InstanceEvent, 1024)
	go func() {
		defer close(ch)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			ch <- resp.GetEvent()
		}
	}()
	return ch
}

// nextEvent returns the next event of instanceID on ch.
func nextEvent(t *testing.T, ch <-chan *instancesv1.InstanceEvent, instanceID string) *instancesv1.InstanceEvent {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e, ok := <-ch:
			require.True(t, ok, "event stream ended")
			if e.GetInstanceId() == instanceID {
				return e
			}
		case <-deadline:
			require.FailNow(t, "no event for "+instanceID)
		}
	}
}
