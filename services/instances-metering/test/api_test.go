package test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/tallyhq/tally/pkg/auth"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
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

// caller is one kind of identity that calls the service.
type caller struct {
	name   string
	claims *auth.Claims
	// admitted says whether a rule lets this caller in for organization "acme".
	admitted func(auth.Rule) bool
}

func hasRole(r auth.Rule, role auth.Role) bool { return slices.Contains(r.Roles, role) }

// TestPolicyTableWalk calls every InstanceMeteringService method as every kind of caller over a
// real gRPC connection and checks that the policy table decides, and decides what it says.
func TestPolicyTableWalk(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	m := s.startMeter(t, meterOptions{})
	policy := grpcapi.Policy()
	desc, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(instancesv1.InstanceMeteringService_ServiceDesc.ServiceName))
	require.NoError(t, err)
	methods := desc.(protoreflect.ServiceDescriptor).Methods()
	require.Len(t, policy, methods.Len(), "every method has a rule and every rule a method")

	callers := []caller{
		{"no token", nil, func(auth.Rule) bool { return false }},
		{"member of acme", &auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}, func(r auth.Rule) bool { return hasRole(r, auth.RoleMember) }},
		{"admin of acme", &auth.Claims{Subject: "u2", OrgID: "acme", Roles: []auth.Role{auth.RoleAdmin}}, func(r auth.Rule) bool { return hasRole(r, auth.RoleAdmin) }},
		{"member of another org", &auth.Claims{Subject: "u3", OrgID: "globex", Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin}}, func(auth.Rule) bool { return false }},
		{"instance controller", &auth.Claims{Subject: "service:instance-controller", Roles: []auth.Role{auth.RoleService}}, func(r auth.Rule) bool { return hasRole(r, auth.RoleService) }},
		{"ops", &auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}, func(r auth.Rule) bool { return hasRole(r, auth.RoleOps) }},
	}
	for _, c := range callers {
		token := ""
		if c.claims != nil {
			token = ledgertest.Token(t, *c.claims)
		}
		conn, err := rpcclient.Dial(m.Addr, token)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		for i := range methods.Len() {
			md := methods.Get(i)
			full := "/" + string(desc.FullName()) + "/" + string(md.Name())
			rule, ok := policy[full]
			require.True(t, ok, "%s missing from the policy", full)
			t.Run(c.name+"/"+string(md.Name()), func(t *testing.T) {
				err := invoke(t, conn, full, md)
				code := status.Code(err)
				if c.admitted(rule) {
					require.NotContains(t, []codes.Code{codes.PermissionDenied, codes.Unauthenticated}, code, "%s must be admitted: %v", c.name, err)
					return
				}
				want := codes.PermissionDenied
				if c.claims == nil {
					want = codes.Unauthenticated
				}
				require.Equal(t, want.String(), code.String(), "%v", err)
			})
		}
	}
}

// invoke calls method with a request naming organization "acme" and otherwise empty.
func invoke(t *testing.T, conn *grpc.ClientConn, full string, md protoreflect.MethodDescriptor) error {
	req := dynamicpb.NewMessage(md.Input())
	if f := md.Input().Fields().ByName("org_id"); f != nil {
		req.Set(f, protoreflect.ValueOfString("acme"))
	}
	if md.IsStreamingServer() {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
		if err != nil {
			return err
		}
		if err := s.SendMsg(req); err != nil {
			return err
		}
		_ = s.CloseSend()
		err = s.RecvMsg(dynamicpb.NewMessage(md.Output()))
		if status.Code(err) == codes.DeadlineExceeded {
			return nil // admitted: the stream stayed open waiting for events
		}
		return err
	}
	return conn.Invoke(t.Context(), full, req, dynamicpb.NewMessage(md.Output()))
}
