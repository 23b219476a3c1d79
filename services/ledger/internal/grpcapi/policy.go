package grpcapi

import (
	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
)

func method(name string) string {
	return "/" + ledgerv1.LedgerService_ServiceDesc.ServiceName + "/" + name
}

var (
	members    = []auth.Role{auth.RoleMember, auth.RoleAdmin}
	memberRead = append([]auth.Role{auth.RoleService, auth.RoleOps}, members...)
	backends   = []auth.Role{auth.RoleService, auth.RoleOps}
	opsOnly    = []auth.Role{auth.RoleOps}
)

// Policy says who may call each LedgerService method. The README's table is generated from it.
//   - members and admins read their own organization only;
//   - `service` callers (model backends, the instance controller, our services) check, debit and
//     hold credits for any organization, but never grant them;
//   - Credit admits only ops and the payments service; Adjust only ops and the payments service
//     (which takes refunded credits back).
func Policy() auth.Policy {
	return auth.Policy{
		method("GetBalance"):       {Roles: memberRead, OrgScoped: true},
		method("ListTransactions"): {Roles: memberRead, OrgScoped: true},
		method("GetUsageSummary"):  {Roles: memberRead, OrgScoped: true},
		method("Credit"):           {Roles: opsOnly, Services: []string{"payments"}},
		method("Debit"):            {Roles: backends},
		method("DebitStream"):      {Roles: backends},
		method("Adjust"):           {Roles: opsOnly, Services: []string{"payments"}},
		method("Authorize"):        {Roles: backends},
		method("Reserve"):          {Roles: backends},
		method("Capture"):          {Roles: backends},
		method("Release"):          {Roles: backends},
		method("WatchEvents"):      {Roles: append([]auth.Role{auth.RoleService, auth.RoleOps}, members...), OrgScoped: true},
		method("MoveOrganization"): {Roles: opsOnly},
		method("GetSpendLimit"):    {Roles: memberRead, OrgScoped: true},
		// An organization caps its own spending: its admins, and ops on their behalf.
		method("SetSpendLimit"):     {Roles: []auth.Role{auth.RoleAdmin, auth.RoleOps}, OrgScoped: true},
		method("ListProjectLimits"): {Roles: memberRead, OrgScoped: true},
		method("SetProjectLimit"):   {Roles: []auth.Role{auth.RoleAdmin, auth.RoleOps}, OrgScoped: true},
	}
}
