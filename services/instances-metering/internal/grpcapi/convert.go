package grpcapi

import (
	"google.golang.org/protobuf/types/known/durationpb"

	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	"github.com/tallyhq/tally/pkg/grpcmap"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

var states = map[rental.State]instancesv1.RentalState{
	rental.StateRunning:   instancesv1.RentalState_RENTAL_STATE_RUNNING,
	rental.StateSuspended: instancesv1.RentalState_RENTAL_STATE_SUSPENDED_INSUFFICIENT_CREDITS,
	rental.StateStopped:   instancesv1.RentalState_RENTAL_STATE_STOPPED,
}

var eventKinds = map[rental.EventKind]instancesv1.InstanceEventKind{
	rental.EventStarted:       instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_STARTED,
	rental.EventPeriodCharged: instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_PERIOD_CHARGED,
	rental.EventSuspended:     instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_SUSPENDED_INSUFFICIENT_CREDITS,
	rental.EventStopped:       instancesv1.InstanceEventKind_INSTANCE_EVENT_KIND_STOPPED,
}

func rentalToProto(r rental.Rental) *instancesv1.Rental {
	return &instancesv1.Rental{
		InstanceId:     r.InstanceID,
		OrgId:          r.OrgID,
		InstanceType:   r.InstanceType,
		HourlyPrice:    money.ToProto(r.HourlyPrice, r.Currency),
		PriceVersionId: r.PriceVersionID,
		BillingPeriod:  durationpb.New(r.Period),
		PeriodPrice:    money.ToProto(r.PeriodPrice, r.Currency),
		State:          states[r.State],
		StartedAt:      grpcmap.Timestamp(r.StartedAt),
		StoppedAt:      grpcmap.Timestamp(r.StoppedAt),
		SuspendedAt:    grpcmap.Timestamp(r.SuspendedAt),
		PeriodsCharged: r.PeriodsCharged,
		TotalCharged:   money.ToProto(r.TotalCharged, r.Currency),
		NextPeriodAt:   grpcmap.Timestamp(r.NextPeriodAt()),
	}
}

func eventToProto(e rental.Event) *instancesv1.InstanceEvent {
	p := &instancesv1.InstanceEvent{
		Sequence:            e.Seq,
		Kind:                eventKinds[e.Kind],
		InstanceId:          e.InstanceID,
		OrgId:               e.OrgID,
		InstanceType:        e.InstanceType,
		Period:              e.Period,
		LedgerTransactionId: e.TransactionID,
		OccurredAt:          grpcmap.Timestamp(e.OccurredAt),
	}
	if e.Kind == rental.EventPeriodCharged || e.Kind == rental.EventSuspended {
		p.Amount = money.ToProto(e.Amount, e.Currency)
	}
	return p
}
