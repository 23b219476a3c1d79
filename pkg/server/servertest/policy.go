package servertest

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
	"github.com/tallyhq/tally/pkg/gen/openapi"
	"github.com/tallyhq/tally/pkg/rpcclient"
)

// Methods is the full method name ("/pkg.Service/Method") of every method of desc, unary and
// streaming.
func Methods(desc grpc.ServiceDesc) map[string]bool {
	methods := map[string]bool{}
	for _, m := range desc.Methods {
		methods["/"+desc.ServiceName+"/"+m.MethodName] = true
	}
	for _, s := range desc.Streams {
		methods["/"+desc.ServiceName+"/"+s.StreamName] = true
	}
	return methods
}

// CheckPolicyCoversEveryMethod fails unless policy has a rule for every method of desc and no
// rule for another method, and every rule that is not public admits someone.
func CheckPolicyCoversEveryMethod(t *testing.T, desc grpc.ServiceDesc, policy auth.Policy) {
	t.Helper()
	methods := Methods(desc)
	for m := range methods {
		rule, ok := policy[m]
		require.True(t, ok, "method %s is not in the policy", m)
		if !rule.Public {
			require.True(t, len(rule.Roles)+len(rule.Services) > 0, "method %s admits nobody", m)
		}
	}
	for m := range policy {
		require.True(t, methods[m], "policy names unknown method %s", m)
	}
}

// CheckOpenAPIPolicy fails unless every REST route of service (its full name, e.g.
// "tally.ledger.v1.LedgerService") in the committed OpenAPI document is in policy, and it is
// marked public (`security: []`) exactly when the policy admits callers without a token.
func CheckOpenAPIPolicy(t *testing.T, service string, policy auth.Policy) {
	t.Helper()
	require.NoError(t, openapi.CheckPolicy(service, func(fullMethod string) (listed, public bool) {
		rule, ok := policy[fullMethod]
		return ok, rule.Public
	}))
}

// Caller is one kind of identity a policy walk calls every method as.
type Caller struct {
	Name string
	// Claims is the caller's token; nil calls without one.
	Claims *auth.Claims
	// Admitted says whether a rule lets this caller in for organization "acme".
	Admitted func(auth.Rule) bool
}

// HasRole reports whether r admits role.
func HasRole(r auth.Rule, role auth.Role) bool { return slices.Contains(r.Roles, role) }

// Callers are the callers every service's policy walk has, then extra (its own service callers):
// no token, a member and an admin of "acme", a member of another organization, and ops.
func Callers(extra ...Caller) []Caller {
	nobody := func(auth.Rule) bool { return false }
	return append([]Caller{
		{"no token", nil, nobody},
		{"member of acme", &auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}, func(r auth.Rule) bool { return HasRole(r, auth.RoleMember) }},
		{"admin of acme", &auth.Claims{Subject: "u2", OrgID: "acme", Roles: []auth.Role{auth.RoleAdmin}}, func(r auth.Rule) bool { return HasRole(r, auth.RoleAdmin) }},
		{"member of another org", &auth.Claims{Subject: "u3", OrgID: "globex", Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin}}, nobody},
		{"ops", &auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}, func(r auth.Rule) bool { return HasRole(r, auth.RoleOps) }},
	}, extra...)
}

// PolicyWalk is what WalkPolicy calls.
type PolicyWalk struct {
	// Addr is the running service's gRPC address.
	Addr string
	// Service is the gRPC service's full name, e.g. "tally.ledger.v1.LedgerService".
	Service string
	Policy  auth.Policy
	// Token mints the token of a caller's claims.
	Token   func(testing.TB, auth.Claims) string
	Callers []Caller
}

// WalkPolicy calls every method of the service as every caller over a real gRPC connection, with a
// request naming organization "acme" and otherwise empty, and checks that the policy decides,
// and decides what it says: an admitted caller is neither Unauthenticated nor PermissionDenied,
// any other is PermissionDenied, or Unauthenticated without a token.
func WalkPolicy(t *testing.T, w PolicyWalk) {
	t.Helper()
	desc, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(w.Service))
	require.NoError(t, err)
	methods := desc.(protoreflect.ServiceDescriptor).Methods()
	require.Len(t, w.Policy, methods.Len(), "every method has a rule and every rule a method")
	for _, c := range w.Callers {
		token := ""
		if c.Claims != nil {
			token = w.Token(t, *c.Claims)
		}
		conn, err := rpcclient.Dial(w.Addr, token)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		for i := range methods.Len() {
			m := methods.Get(i)
			full := "/" + string(desc.FullName()) + "/" + string(m.Name())
			rule, ok := w.Policy[full]
			require.True(t, ok, "%s missing from the policy", full)
			t.Run(c.Name+"/"+string(m.Name()), func(t *testing.T) {
				err := invoke(t, conn, full, m)
				code := status.Code(err)
				if c.Admitted(rule) {
					require.NotContains(t, []codes.Code{codes.PermissionDenied, codes.Unauthenticated}, code, "%s must be admitted: %v", c.Name, err)
					return
				}
				want := codes.PermissionDenied
				if c.Claims == nil {
					want = codes.Unauthenticated
				}
				require.Equal(t, want.String(), code.String(), "%v", err)
			})
		}
	}
}

// invoke calls method with a request naming organization "acme" and otherwise empty. A server
// stream that stays open is admitted: it is waiting for events.
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
			return nil
		}
		return err
	}
	return conn.Invoke(t.Context(), full, req, dynamicpb.NewMessage(m.Output()))
}
