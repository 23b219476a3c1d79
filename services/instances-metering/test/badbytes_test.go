package test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestAttack_BadBytes sends NUL, invalid UTF-8, bidi and control characters in every string field
// of every InstanceMeteringService request, each found from the proto descriptors, to a real
// metering service: each is InvalidArgument naming the field, and no row is written.
func TestAttack_BadBytes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	m := s.startMeter(t, meterOptions{})
	// One rental started and stopped, so that there are events to watch and nothing is charged
	// while the attack runs.
	s.credit(t, "acme", 10*unit)
	ctl := m.controller(t)
	_, err := ctl.StartMetering(t.Context(), &instancesv1.StartMeteringRequest{InstanceId: "i-1", OrgId: "acme", InstanceType: a10g, IdempotencyKey: "start-1"})
	require.NoError(t, err)
	_, err = ctl.StopMetering(t.Context(), &instancesv1.StopMeteringRequest{InstanceId: "i-1"})
	require.NoError(t, err)

	rows := textchecktest.RowCounts(s.ledger.DatabaseURL, "instances")
	require.Eventually(t, func() bool { return rows(t)["pending_events"] == 0 }, wait, tick, "the rental's events are published")

	conn, err := rpcclient.Dial(m.Addr, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	controller := ledgertest.ServiceToken(t, "instance-controller")
	textchecktest.Attack(t, textchecktest.Target{
		Service: instancesv1.File_tally_instances_v1_instances_proto.Services().ByName("InstanceMeteringService"),
		Conn:    conn,
		Rows:    rows,
		Calls: map[string]textchecktest.Call{
			// An organization without credits: the valid request is refused for its funds and writes nothing.
			"StartMetering": {Token: controller, Request: &instancesv1.StartMeteringRequest{InstanceId: "i-2", OrgId: "broke",
				InstanceType: a10g, IdempotencyKey: "start-2"}, BaseCode: codes.FailedPrecondition},
			"StopMetering":        {Token: controller, Request: &instancesv1.StopMeteringRequest{InstanceId: "i-unknown"}, BaseCode: codes.NotFound},
			"GetRental":           {Token: memberToken(t, "acme"), Request: &instancesv1.GetRentalRequest{OrgId: "acme", InstanceId: "i-1"}},
			"ListRentals":         {Token: memberToken(t, "acme"), Request: &instancesv1.ListRentalsRequest{OrgId: "acme", PageSize: 10}},
			"WatchInstanceEvents": {Token: controller, Request: &instancesv1.WatchInstanceEventsRequest{}},
		},
	})
}
