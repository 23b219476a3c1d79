package grpcapi

import (
	"github.com/tallyhq/tally/pkg/auth"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
)

// Policy says who may call each InstanceMeteringService method. The README's table is generated
// from it.
//   - the instance controller (a `service` token) and ops start, stop and watch rentals;
//   - members and admins read their own organization's rentals (GetRental and ListRentals name
//     the organization, which must be theirs); services and ops read any.
func Policy() auth.Policy {
	backends := []auth.Role{auth.RoleService, auth.RoleOps}
	readers := []auth.Role{auth.RoleMember, auth.RoleAdmin, auth.RoleService, auth.RoleOps}
	return auth.Policy{
		instancesv1.InstanceMeteringService_StartMetering_FullMethodName:       {Roles: backends},
		instancesv1.InstanceMeteringService_StopMetering_FullMethodName:        {Roles: backends},
		instancesv1.InstanceMeteringService_GetRental_FullMethodName:           {Roles: readers, OrgScoped: true},
		instancesv1.InstanceMeteringService_ListRentals_FullMethodName:         {Roles: readers, OrgScoped: true},
		instancesv1.InstanceMeteringService_WatchInstanceEvents_FullMethodName: {Roles: backends},
	}
}
