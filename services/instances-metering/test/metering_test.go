package test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
)

func TestChargesEveryStartedPeriodExactlyOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.startMeter(t, meterOptions{}).controller(t)
	s.credit(t, "acme", 100*unit)

	r := start(t, c, "i-exact", "acme", a10g)
	require.Equal(t, instancesv1.RentalState_RENTAL_STATE_RUNNING, r.GetState())
	require.Equal(t, int64(1), r.GetPeriodsCharged(), "the first period is charged at start")
	require.Equal(t, 1_200_000_000, int(nanos(t, r.GetHourlyPrice())))
	require.Equal(t, "USD", r.GetHourlyPrice().GetCurrencyCode())
	require.Equal(t, a10gPeriod, nanos(t, r.GetPeriodPrice()))
	require.Equal(t, period, r.GetBillingPeriod().AsDuration())
	require.NotEmpty(t, r.GetPriceVersionId())
	require.Equal(t, r.GetStartedAt().AsTime().Add(period), r.GetNextPeriodAt().AsTime())

	waitCharged(t, c, "i-exact", 4)
	s.requireNoDrift(t)
	stopped := stop(t, c, "i-exact")
	s.requireChargedExactly(t, stopped)
	n := money.Nanos(stopped.GetPeriodsCharged())
	require.Equal(t, 100*unit-n*a10gPeriod, s.balance(t, "acme"))

	// Stop is final: give the scheduler a few boundaries to misbehave, then look again. A witness
	// rental of another organization on the same meter proves three boundaries were processed.
	s.awaitBoundaries(t, c, "i-exact-witness", 3)
	again := stop(t, c, "i-exact")
	require.True(t, proto.Equal(stopped, again), "a second stop returns the same rental:\n%v\n%v", stopped, again)
	s.requireChargedExactly(t, get(t, c, "i-exact"))
	require.Equal(t, 100*unit-n*a10gPeriod, s.balance(t, "acme"))
}

func TestKilledMeterCatchesUpWithoutDoubleOrMissingCharge(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.credit(t, "acme", 100*unit)
	m := s.startMeter(t, meterOptions{})
	ids := make([]string, 8)
	for i := range ids {
		ids[i] = fmt.Sprintf("i-crash-%d", i)
		start(t, m.controller(t), ids[i], "acme", a10g)
	}
	first := get(t, m.controller(t), ids[0])
	for cycle := range 3 {
		waitCharged(t, m.controller(t), ids[0], int64(2+3*cycle))
		// Kill the meter just after a boundary of the first rental, while the batch of that
		// boundary is being charged.
		// The next boundary is reached once the meter has charged it to the first rental.
		charged := s.periodsCharged(t, first.GetInstanceId())
		require.Eventually(t, func() bool {
			return s.periodsCharged(t, first.GetInstanceId()) > charged
		}, wait, time.Millisecond, "%s never charged the boundary after period %d", first.GetInstanceId(), charged)
		m.Kill(t)
		// Down for more than two boundaries: they are missed, then caught up. Every running
		// rental has at least two due, uncharged boundaries by the database's clock.
		require.Eventually(t, func() bool { return s.missedBoundaries(t, len(ids), 2) }, wait, tick,
			"boundaries were not missed while the meter was down (cycle %d)", cycle)
		restartedAt := time.Now()
		m = s.startMeter(t, meterOptions{})
		for _, id := range ids {
			require.Eventually(t, func() bool {
				r, err := m.controller(t).GetRental(t.Context(), &instancesv1.GetRentalRequest{InstanceId: id})
				return err == nil && r.GetRental().GetPeriodsCharged() >= startedBy(r.GetRental(), restartedAt)
			}, wait, tick, "%s not caught up after restart %d", id, cycle)
		}
	}
	s.requireNoDrift(t)
	var total money.Nanos
	for _, id := range ids {
		r := stop(t, m.controller(t), id)
		s.requireChargedExactly(t, r)
		total += nanos(t, r.GetTotalCharged())
	}
	require.Equal(t, 100*unit-total, s.balance(t, "acme"))
}

// startedBy is how many periods of r started at or before at.
func startedBy(r *instancesv1.Rental, at time.Time) int64 {
	return int64(at.Sub(r.GetStartedAt().AsTime())/r.GetBillingPeriod().AsDuration()) + 1
}

func TestTwoReplicasNeverDoubleCharge(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.credit(t, "acme", 100*unit)
	replicas := []*meter{s.startMeter(t, meterOptions{}), s.startMeter(t, meterOptions{})}
	clients := []instancesv1.InstanceMeteringServiceClient{replicas[0].controller(t), replicas[1].controller(t)}
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprintf("i-pair-%d", i)
		start(t, clients[i%2], ids[i], "acme", a10g)
	}
	for _, id := range ids {
		waitCharged(t, clients[0], id, 4)
	}
	s.requireNoDrift(t)
	var total money.Nanos
	for i, id := range ids {
		r := stop(t, clients[(i+1)%2], id)
		s.requireChargedExactly(t, r)
		total += nanos(t, r.GetTotalCharged())
	}
	require.Equal(t, 100*unit-total, s.balance(t, "acme"))
}

func TestPriceChangeDoesNotChangeARunningRental(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.startMeter(t, meterOptions{}).controller(t)
	s.credit(t, "acme", 100*unit)
	s.credit(t, "probe", 100*unit)
	r := start(t, c, "i-locked", "acme", a10g)
	waitCharged(t, c, "i-locked", 2)

	ops := s.pricing.Client(t, s.pricing.OpsToken(t))
	_, err := ops.SetInstancePrice(t.Context(), &pricingv1.SetInstancePriceRequest{
		InstanceTypeId: a10g, Description: "1x NVIDIA A10G 24 GB, 8 vCPU, 32 GiB memory", Gpu: "NVIDIA A10G 24GB",
		GpuCount: 1, Vcpu: 8, MemoryGib: 32, HourlyPrice: money.ToProto(2_400_000_000, "USD"),
		Reason: "test: double the price", IdempotencyKey: "double-a10g",
	})
	require.NoError(t, err)
	// New rentals get the new price once the meter's catalog has it.
	probes := 0
	var probe *instancesv1.Rental
	require.Eventually(t, func() bool {
		probes++
		probe = start(t, c, fmt.Sprintf("i-probe-%d", probes), "probe", a10g)
		stop(t, c, probe.GetInstanceId())
		return nanos(t, probe.GetHourlyPrice()) == 2_400_000_000
	}, wait, 50*time.Millisecond)
	require.Equal(t, money.Nanos(666_667), nanos(t, probe.GetPeriodPrice()))

	charged := get(t, c, "i-locked").GetPeriodsCharged()
	waitCharged(t, c, "i-locked", charged+2)
	stopped := stop(t, c, "i-locked")
	require.Equal(t, r.GetHourlyPrice().String(), stopped.GetHourlyPrice().String())
	require.Equal(t, r.GetPriceVersionId(), stopped.GetPriceVersionId())
	require.Equal(t, a10gPeriod, nanos(t, stopped.GetPeriodPrice()))
	s.requireChargedExactly(t, stopped) // every period at the locked price
}

func TestInsufficientCreditsSuspendTheRentalAndEmitTheEvent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	notices := startNotifications(t)
	c := s.startMeter(t, meterOptions{NotificationsAddr: notices.addr}).controller(t)
	events := watch(t, c, 0)
	s.credit(t, "poor", 3*a10gPeriod)

	start(t, c, "i-poor", "poor", a10g)
	require.Eventually(t, func() bool {
		return get(t, c, "i-poor").GetState() == instancesv1.RentalState_RENTAL_STATE_SUSPENDED_INSUFFICIENT_CREDITS
	}, wait, tick)
	r := get(t, c, "i-poor")
	require.Equal(t, int64(3), r.GetPeriodsCharged())
	require.Equal(t, 3*a10gPeriod, nanos(t, r.GetTotalCharged()))
	require.NotNil(t, r.GetSuspendedAt())
	require.Nil(t, r.GetNextPeriodAt())
	require.Zero(t, s.balance(t, "poor"))
	require.Len(t, s.charges(t, "poor", "i-poor"), 3)

	var seen []*instancesv1.InstanceEvent
	wantKinds := []instancesv1.InstanceEventKind{
		instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_STARTED,
		instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_PERIOD_CHARGED,
		instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_PERIOD_CHARGED,
		instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_PERIOD_CHARGED,
		instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_SUSPENDED_INSUFFICIENT_CREDITS,
	}
	for i, kind := range wantKinds {
		e := nextEvent(t, events, "i-poor")
		require.Equal(t, kind, e.GetKind(), "event %d", i)
		require.Equal(t, "poor", e.GetOrgId())
		if i > 0 {
			require.Equal(t, int64(i-1), e.GetPeriod())
			require.Equal(t, a10gPeriod, nanos(t, e.GetAmount()))
			require.Greater(t, e.GetSequence(), seen[i-1].GetSequence())
		}
		if kind == instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_PERIOD_CHARGED {
			require.NotEmpty(t, e.GetLedgerTransactionId())
		}
		seen = append(seen, e)
	}
	// The stream resumes after any sequence without losing or repeating an event.
	resumed := watch(t, c, seen[1].GetSequence())
	for _, want := range seen[2:] {
		require.True(t, proto.Equal(want, nextEvent(t, resumed, "i-poor")))
	}
	// The notifications service is told once the suspension is committed.
	require.Eventually(t, func() bool { return len(notices.calls()) > 0 }, wait, tick)
	call := notices.calls()[0]
	require.Equal(t, "poor", call.GetOrgId())
	require.Equal(t, "i-poor", call.GetInstanceId())
	require.Equal(t, "rental-suspended:i-poor", call.GetIdempotencyKey())

	// Nothing more is charged, even after the organization tops up; stopping charges nothing.
	s.credit(t, "poor", unit)
	// A witness rental of another organization on the same meter proves two boundaries passed
	// and were processed by the scheduler after the top-up.
	s.awaitBoundaries(t, c, "i-poor-witness", 2)
	stopped := stop(t, c, "i-poor")
	require.Equal(t, instancesv1.RentalState_RENTAL_STATE_STOPPED, stopped.GetState())
	require.Equal(t, int64(3), stopped.GetPeriodsCharged())
	require.Len(t, s.charges(t, "poor", "i-poor"), 3)
	require.Equal(t, unit, s.balance(t, "poor"))
	require.Equal(t, instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_STOPPED, nextEvent(t, events, "i-poor").GetKind())
}

func TestGraceLetsARentalRunIntoASmallNegativeBalance(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// A grace of 0.0005 USD covers one 333,334-nano period below zero, not two.
	c := s.startMeter(t, meterOptions{Grace: 500_000}).controller(t)
	s.credit(t, "tight", 2*a10gPeriod)
	start(t, c, "i-tight", "tight", a10g)
	require.Eventually(t, func() bool {
		return get(t, c, "i-tight").GetState() == instancesv1.RentalState_RENTAL_STATE_SUSPENDED_INSUFFICIENT_CREDITS
	}, wait, tick)
	require.Equal(t, int64(3), get(t, c, "i-tight").GetPeriodsCharged())
	require.Len(t, s.charges(t, "tight", "i-tight"), 3)
	require.Equal(t, -a10gPeriod, s.balance(t, "tight"))
}

func TestStartIsRefusedWhenTheFirstPeriodCannotBePaid(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.startMeter(t, meterOptions{})
	ctl := c.controller(t)
	s.credit(t, "broke", a10gPeriod-1)

	_, err := ctl.StartMetering(t.Context(), &instancesv1.StartMeteringRequest{InstanceId: "i-broke", OrgId: "broke", InstanceType: a10g, IdempotencyKey: "k1"})
	requireCode(t, err, codes.FailedPrecondition)
	_, err = ctl.GetRental(t.Context(), &instancesv1.GetRentalRequest{InstanceId: "i-broke"})
	requireCode(t, err, codes.NotFound)
	list, err := ctl.ListRentals(t.Context(), &instancesv1.ListRentalsRequest{OrgId: "broke"})
	require.NoError(t, err)
	require.Empty(t, list.GetRentals())
	require.Empty(t, s.charges(t, "broke", "i-broke"))
	require.Equal(t, a10gPeriod-1, s.balance(t, "broke"))

	// A refused start leaves nothing behind: after a top-up the same instance starts.
	s.credit(t, "broke", 1)
	r := start(t, ctl, "i-broke", "broke", a10g)
	require.Equal(t, int64(1), r.GetPeriodsCharged())
	require.Zero(t, s.balance(t, "broke"))
}

// notifications is a stand-in for the notifications service that records NotifyRentalSuspended.
type notifications struct {
	notificationsv1.UnimplementedNotificationsServiceServer
	addr string
	mu   sync.Mutex
	got  []*notificationsv1.NotifyRentalSuspendedRequest
}

func startNotifications(t *testing.T) *notifications {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := &notifications{addr: lis.Addr().String()}
	srv := grpc.NewServer()
	notificationsv1.RegisterNotificationsServiceServer(srv, n)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return n
}

func (n *notifications) NotifyRentalSuspended(ctx context.Context, req *notificationsv1.NotifyRentalSuspendedRequest) (*notificationsv1.NotifyRentalSuspendedResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get("authorization")) == 0 {
		return nil, status.Error(codes.Unauthenticated, "no token")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, req)
	return &notificationsv1.NotifyRentalSuspendedResponse{Queued: 1}, nil
}

func (n *notifications) calls() []*notificationsv1.NotifyRentalSuspendedRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*notificationsv1.NotifyRentalSuspendedRequest(nil), n.got...)
}

// awaitBoundaries starts a witness rental of its own organization on c, waits until the
// scheduler has charged n boundaries after its start, and stops it: proof that n boundaries
// passed and were processed by the meter since the call.
func (s *stack) awaitBoundaries(t *testing.T, c instancesv1.InstanceMeteringServiceClient, witness string, n int64) {
	t.Helper()
	org := "org-" + witness
	s.credit(t, org, 100*unit)
	start(t, c, witness, org, a10g)
	waitCharged(t, c, witness, n+1)
	stop(t, c, witness)
}

// periodsCharged reads a rental's periods charged straight from PostgreSQL.
func (s *stack) periodsCharged(t *testing.T, instanceID string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.pool.QueryRow(t.Context(),
		`SELECT periods_charged FROM instances.rentals WHERE instance_id = $1`, instanceID).Scan(&n))
	return n
}

// missedBoundaries reports whether exactly want rentals are running and each has at least k
// boundaries due (by the database's clock) and not charged.
func (s *stack) missedBoundaries(t *testing.T, want int, k int) bool {
	t.Helper()
	var running, behind int
	require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT count(*),
count(*) FILTER (WHERE next_charge_at + ($1::bigint - 1) * (period_ns / 1000) * interval '1 microsecond' < now())
FROM instances.rentals WHERE state = 'running'`, k).Scan(&running, &behind))
	require.Equal(t, want, running)
	return behind == running
}
