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
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/services/ledger/internal/grpcapi"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// caller is one kind of identity that calls the ledger.
type caller struct {
	name   string
	claims *auth.Claims
	// admitted says whether a rule lets this caller in for organization "acme".
	admitted func(auth.Rule) bool
}

func hasRole(r auth.Rule, role auth.Role) bool { return slices.Contains(r.Roles, role) }

func callers() []caller {
	return []caller{
		{"no token", nil, func(auth.Rule) bool { return false }},
		{"member of acme", &auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}, func(r auth.Rule) bool { return hasRole(r, auth.RoleMember) }},
		{"admin of acme", &auth.Claims{Subject: "u2", OrgID: "acme", Roles: []auth.Role{auth.RoleAdmin}}, func(r auth.Rule) bool { return hasRole(r, auth.RoleAdmin) }},
		{"member of another org", &auth.Claims{Subject: "u3", OrgID: "globex", Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin}}, func(auth.Rule) bool { return false }},
		{"model backend", &auth.Claims{Subject: "backend-1", Roles: []auth.Role{auth.RoleService}}, func(r auth.Rule) bool { return hasRole(r, auth.RoleService) }},
		{"payments service", &auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}}, func(r auth.Rule) bool {
			return hasRole(r, auth.RoleService) || slices.Contains(r.Services, "payments")
		}},
		{"ops", &auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}, func(r auth.Rule) bool { return hasRole(r, auth.RoleOps) }},
	}
}

// TestPolicyTableWalk calls every LedgerService method as every kind of caller over a real gRPC
// connection and checks that the policy table decides, and decides what it says.
func TestPolicyTableWalk(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	policy := grpcapi.Policy()
	desc, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(ledgerv1.LedgerService_ServiceDesc.ServiceName))
	require.NoError(t, err)
	methods := desc.(protoreflect.ServiceDescriptor).Methods()
	require.Len(t, policy, methods.Len(), "every method has a rule and every rule a method")

	for _, c := range callers() {
		token := ""
		if c.claims != nil {
			token = ledgertest.Token(t, *c.claims)
		}
		conn, err := rpcclient.Dial(l.Addr, token)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		for i := range methods.Len() {
			m := methods.Get(i)
			full := "/" + string(desc.FullName()) + "/" + string(m.Name())
			rule, ok := policy[full]
			require.True(t, ok, "%s missing from the policy", full)
			t.Run(c.name+"/"+string(m.Name()), func(t *testing.T) {
				err := invoke(t, conn, full, m)
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
func invoke(t *testing.T, conn *grpc.ClientConn, full string, m protoreflect.MethodDescriptor) error {
	req := dynamicpb.NewMessage(m.Input())
	if f := m.Input().Fields().ByName("org_id"); f != nil {
		req.Set(f, protoreflect.ValueOfString("acme"))
	}
	if m.IsStreamingServer() {
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
		err = s.RecvMsg(dynamicpb.NewMessage(m.Output()))
		if status.Code(err) == codes.DeadlineExceeded {
			return nil // admitted: the stream stayed open waiting for events
		}
		return err
	}
	return conn.Invoke(t.Context(), full, req, dynamicpb.NewMessage(m.Output()))
}
