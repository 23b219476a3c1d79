package grpcapi

import (
	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
)

func method(name string) string {
	return "/" + notificationsv1.NotificationsService_ServiceDesc.ServiceName + "/" + name
}

// Policy says who may call each NotificationsService method. The README's table is generated
// from it.
//   - members and admins read and change their own settings in their own organization (the
//     handler also refuses another member's id);
//   - ops read anyone's settings and the delivery log;
//   - the instances-metering service (and ops) report suspended rentals;
//   - the payments service (and ops) report failed auto-recharges.
func Policy() auth.Policy {
	return auth.Policy{
		method("GetNotificationSettings"):    {Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin, auth.RoleOps}, OrgScoped: true},
		method("UpdateNotificationSettings"): {Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin}, OrgScoped: true},
		method("ListDeliveries"):             {Roles: []auth.Role{auth.RoleOps}},
		method("NotifyRentalSuspended"):      {Roles: []auth.Role{auth.RoleOps}, Services: []string{"instances-metering"}},
		method("NotifyRechargeFailed"):       {Roles: []auth.Role{auth.RoleOps}, Services: []string{"payments"}},
	}
}
