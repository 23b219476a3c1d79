package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func TestHolds(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{SweepInterval: 50 * time.Millisecond})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	credit(t, ops, "h", 10*unit, "seed")

	// A hold counts against available, not against the balance.
	r1, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "h", Amount: usd(4 * unit), IdempotencyKey: "stream-1", Ttl: durationpb.New(time.Minute)})
	require.NoError(t, err)
	require.Equal(t, 6*unit, nanos(t, r1.GetAvailable()))
	require.False(t, r1.GetReplayed())
	b := balance(t, ops, "h")
	require.Equal(t, 10*unit, nanos(t, b.GetBalance()))
	require.Equal(t, 6*unit, nanos(t, b.GetAvailable()))
	require.Equal(t, 4*unit, nanos(t, b.GetHeld()))
	az, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "h", Amount: usd(7 * unit)})
	require.NoError(t, err)
	require.False(t, az.GetAllowed())
	require.Equal(t, 6*unit, nanos(t, az.GetAvailable()))

	// Reserve is idempotent: same key, same hold; other parameters: AlreadyExists.
	again, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "h", Amount: usd(4 * unit), IdempotencyKey: "stream-1", Ttl: durationpb.New(time.Minute)})
	require.NoError(t, err)
	require.Equal(t, r1.GetHold().GetId(), again.GetHold().GetId())
	require.True(t, again.GetReplayed())
	_, err = svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "h", Amount: usd(5 * unit), IdempotencyKey: "stream-1", Ttl: durationpb.New(time.Minute)})
	requireCode(t, err, codes.AlreadyExists)
	// More than available cannot be held.
	_, err = svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "h", Amount: usd(7 * unit), IdempotencyKey: "stream-big", Ttl: durationpb.New(time.Minute)})
	requireCode(t, err, codes.FailedPrecondition)

	// Capture below the hold: only the captured amount is charged, the rest is freed.
	c1, err := svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: r1.GetHold().GetId(), Amount: usd(3 * unit), IdempotencyKey: "cap-1"})
	require.NoError(t, err)
	require.Equal(t, ledgerv1.HoldStatus_HOLD_STATUS_CAPTURED, c1.GetHold().GetStatus())
	require.Equal(t, 7*unit, nanos(t, c1.GetBalance()))
	require.False(t, c1.GetReplayed())
	b = balance(t, ops, "h")
	require.Equal(t, 7*unit, nanos(t, b.GetAvailable()))
	// Capture retried: same transaction; capture of an ended hold with a new key: FailedPrecondition.
	c1again, err := svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: r1.GetHold().GetId(), Amount: usd(3 * unit), IdempotencyKey: "cap-1"})
	require.NoError(t, err)
	require.Equal(t, c1.GetTransaction().GetId(), c1again.GetTransaction().GetId())
	require.True(t, c1again.GetReplayed())
	_, err = svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: r1.GetHold().GetId(), Amount: usd(4 * unit), IdempotencyKey: "cap-1"})
	requireCode(t, err, codes.AlreadyExists)
	_, err = svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: r1.GetHold().GetId(), Amount: usd(unit), IdempotencyKey: "cap-other"})
	requireCode(t, err, codes.FailedPrecondition)

	// Capture above the hold: the whole usage is charged.
	r2, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "h", Amount: usd(2 * unit), IdempotencyKey: "stream-2"})
	require.NoError(t, err)
	c2, err := svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: r2.GetHold().GetId(), Amount: usd(5 * unit), IdempotencyKey: "cap-2"})
	require.NoError(t, err)
	require.Equal(t, 2*unit, nanos(t, c2.GetBalance()))
	require.Zero(t, nanos(t, balance(t, ops, "h").GetHeld()))

	// Release frees the hold; releasing again is a no-op.
	r3, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "h", Amount: usd(unit), IdempotencyKey: "stream-3"})
	require.NoError(t, err)
	rel, err := svc.Release(t.Context(), &ledgerv1.ReleaseRequest{HoldId: r3.GetHold().GetId()})
	require.NoError(t, err)
	require.Equal(t, ledgerv1.HoldStatus_HOLD_STATUS_RELEASED, rel.GetHold().GetStatus())
	rel, err = svc.Release(t.Context(), &ledgerv1.ReleaseRequest{HoldId: r3.GetHold().GetId()})
	require.NoError(t, err)
	require.Equal(t, ledgerv1.HoldStatus_HOLD_STATUS_RELEASED, rel.GetHold().GetStatus())
	require.Equal(t, 2*unit, nanos(t, balance(t, ops, "h").GetAvailable()))

	// A hold past its TTL is released by the sweep.
	r4, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "h", Amount: usd(unit), IdempotencyKey: "stream-4", Ttl: durationpb.New(time.Second)})
	require.NoError(t, err)
	require.Equal(t, unit, nanos(t, balance(t, ops, "h").GetAvailable()))
	require.Eventually(t, func() bool { return nanos(t, balance(t, ops, "h").GetHeld()) == 0 }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 2*unit, nanos(t, balance(t, ops, "h").GetAvailable()))
	_, err = svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: r4.GetHold().GetId(), Amount: usd(unit), IdempotencyKey: "cap-4"})
	requireCode(t, err, codes.FailedPrecondition)
	requireBalanced(t, l.DatabaseURL)
}
