package test

import (
	"slices"
	"testing"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/ledger/internal/grpcapi"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestPolicyTableWalk calls every LedgerService method as every kind of caller over a real gRPC
// connection and checks that the policy table decides, and decides what it says.
func TestPolicyTableWalk(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	service := func(r auth.Rule) bool { return servertest.HasRole(r, auth.RoleService) }
	servertest.WalkPolicy(t, servertest.PolicyWalk{
		Addr: l.Addr, Service: ledgerv1.LedgerService_ServiceDesc.ServiceName, Policy: grpcapi.Policy(), Token: ledgertest.Token,
		Callers: servertest.Callers(
			servertest.Caller{Name: "model backend", Claims: &auth.Claims{Subject: "backend-1", Roles: []auth.Role{auth.RoleService}}, Admitted: service},
			servertest.Caller{Name: "payments service", Claims: &auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}}, Admitted: func(r auth.Rule) bool {
				return service(r) || slices.Contains(r.Services, "payments")
			}},
		),
	})
}
