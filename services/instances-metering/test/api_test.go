package test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/auth"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/instances-metering/internal/grpcapi"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

func TestBadInputIsRefusedWithClearCodes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := s.startMeter(t, meterOptions{}).controller(t)
	s.credit(t, "acme", 10*unit)
	s.credit(t, "globex", 10*unit)
	start(t, c, "i-running", "acme", a10g)
	start(t, c, "i-ended", "acme", a10g)
	stop(t, c, "i-ended")

	tests := append(badStarts(t, c), badReads(t, c)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.want == codes.OK {
				require.NoError(t, err)
				return
			}
			requireCode(t, err, tt.want)
		})
	}
	// The refused starts changed nothing.
	r := get(t, c, "i-running")
	require.Equal(t, "acme", r.GetOrgId())
	require.Equal(t, a10g, r.GetInstanceType())
	_, err := c.GetRental(t.Context(), &instancesv1.GetRentalRequest{InstanceId: "i-new"})
	requireCode(t, err, codes.NotFound)
}

// badInput is a call that must answer want.
type badInput struct {
	name string
	call func() error
	want codes.Code
}

// badStarts are the StartMetering cases of TestBadInputIsRefusedWithClearCodes.
func badStarts(t *testing.T, c instancesv1.InstanceMeteringServiceClient) []badInput {
	startReq := func(instance, org, typ, key string) func() error {
		return func() error {
			_, err := c.StartMetering(t.Context(), &instancesv1.StartMeteringRequest{InstanceId: instance, OrgId: org, InstanceType: typ, IdempotencyKey: key})
			return err
		}
	}
	return []badInput{
		{"unknown instance type", startReq("i-new", "acme", "gpu-does-not-exist", "k"), codes.NotFound},
		{"running instance with another org", startReq("i-running", "globex", a10g, "k2"), codes.AlreadyExists},
		{"running instance with another type", startReq("i-running", "acme", "cpu-8x32", "k2"), codes.AlreadyExists},
		{"running instance again, same org and type", startReq("i-running", "acme", a10g, "k2"), codes.OK},
		{"retry of an ended rental's start", startReq("i-ended", "acme", a10g, "start-i-ended"), codes.OK},
		{"new start of an ended rental", startReq("i-ended", "acme", a10g, "k3"), codes.FailedPrecondition},
		{"instance type not available", startReq("i-new", "acme", "gpu-h100-80g-8x", "k"), codes.FailedPrecondition},
		{"missing instance id", startReq("", "acme", a10g, "k"), codes.InvalidArgument},
		{"instance id with a slash", startReq("i/1", "acme", a10g, "k"), codes.InvalidArgument},
		{"missing org", startReq("i-new", "", a10g, "k"), codes.InvalidArgument},
		{"org starting with a dash", startReq("i-new", "-acme", a10g, "k"), codes.InvalidArgument},
		{"missing instance type", startReq("i-new", "acme", "", "k"), codes.InvalidArgument},
		{"missing idempotency key", startReq("i-new", "acme", a10g, ""), codes.InvalidArgument},
	}
}

// badReads are its StopMetering, GetRental, ListRentals and WatchInstanceEvents cases.
func badReads(t *testing.T, c instancesv1.InstanceMeteringServiceClient) []badInput {
	return []badInput{
		{"stop of an unknown instance", func() error {
			_, err := c.StopMetering(t.Context(), &instancesv1.StopMeteringRequest{InstanceId: "i-unknown"})
			return err
		}, codes.NotFound},
		{"stop without instance id", func() error {
			_, err := c.StopMetering(t.Context(), &instancesv1.StopMeteringRequest{})
			return err
		}, codes.InvalidArgument},
		{"get of an unknown instance", func() error {
			_, err := c.GetRental(t.Context(), &instancesv1.GetRentalRequest{InstanceId: "i-unknown"})
			return err
		}, codes.NotFound},
		{"get under another org", func() error {
			_, err := c.GetRental(t.Context(), &instancesv1.GetRentalRequest{OrgId: "globex", InstanceId: "i-running"})
			return err
		}, codes.NotFound},
		{"list with a negative page size", func() error {
			_, err := c.ListRentals(t.Context(), &instancesv1.ListRentalsRequest{OrgId: "acme", PageSize: -1})
			return err
		}, codes.InvalidArgument},
		{"list with a bad page token", func() error {
			_, err := c.ListRentals(t.Context(), &instancesv1.ListRentalsRequest{OrgId: "acme", PageToken: "x"})
			return err
		}, codes.InvalidArgument},
		{"watch from a negative sequence", func() error {
			stream, err := c.WatchInstanceEvents(t.Context(), &instancesv1.WatchInstanceEventsRequest{AfterSequence: -1})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}, codes.InvalidArgument},
	}
}

func TestMembersSeeOnlyTheirOrganizationsRentals(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	m := s.startMeter(t, meterOptions{})
	c := m.controller(t)
	s.credit(t, "acme", 10*unit)
	s.credit(t, "globex", 10*unit)
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		start(t, c, id, "acme", a10g)
	}
	start(t, c, "g-1", "globex", "cpu-8x32")
	member := m.client(t, memberToken(t, "acme"))

	// ListRentals pages through acme's rentals only, newest first.
	var ids []string
	token := ""
	for {
		page, err := member.ListRentals(t.Context(), &instancesv1.ListRentalsRequest{OrgId: "acme", PageSize: 2, PageToken: token})
		require.NoError(t, err)
		for _, r := range page.GetRentals() {
			require.Equal(t, "acme", r.GetOrgId())
			ids = append(ids, r.GetInstanceId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, []string{"a-3", "a-2", "a-1"}, ids)

	got, err := member.GetRental(t.Context(), &instancesv1.GetRentalRequest{OrgId: "acme", InstanceId: "a-1"})
	require.NoError(t, err)
	require.Equal(t, "a-1", got.GetRental().GetInstanceId())

	_, err = member.ListRentals(t.Context(), &instancesv1.ListRentalsRequest{OrgId: "globex"})
	requireCode(t, err, codes.PermissionDenied)
	_, err = member.GetRental(t.Context(), &instancesv1.GetRentalRequest{OrgId: "globex", InstanceId: "g-1"})
	requireCode(t, err, codes.PermissionDenied)
	// Another organization's instance under the member's own organization does not exist.
	_, err = member.GetRental(t.Context(), &instancesv1.GetRentalRequest{OrgId: "acme", InstanceId: "g-1"})
	requireCode(t, err, codes.NotFound)
	_, err = member.GetRental(t.Context(), &instancesv1.GetRentalRequest{InstanceId: "a-1"})
	requireCode(t, err, codes.PermissionDenied)
	_, err = member.StopMetering(t.Context(), &instancesv1.StopMeteringRequest{InstanceId: "a-1"})
	requireCode(t, err, codes.PermissionDenied)
}

// TestPolicyTableWalk calls every InstanceMeteringService method as every kind of caller over a
// real gRPC connection and checks that the policy table decides, and decides what it says.
func TestPolicyTableWalk(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	m := s.startMeter(t, meterOptions{})
	servertest.WalkPolicy(t, servertest.PolicyWalk{
		Addr: m.Addr, Service: instancesv1.InstanceMeteringService_ServiceDesc.ServiceName, Policy: grpcapi.Policy(), Token: ledgertest.Token,
		Callers: servertest.Callers(servertest.Caller{
			Name: "instance controller", Claims: &auth.Claims{Subject: "service:instance-controller", Roles: []auth.Role{auth.RoleService}},
			Admitted: func(r auth.Rule) bool { return servertest.HasRole(r, auth.RoleService) },
		}),
	})
}
