package grpcapi

import (
	"github.com/tallyhq/tally/pkg/auth"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
)

func method(name string) string {
	return "/" + paymentsv1.PaymentsService_ServiceDesc.ServiceName + "/" + name
}

var (
	members    = []auth.Role{auth.RoleMember, auth.RoleAdmin}
	memberRead = []auth.Role{auth.RoleMember, auth.RoleAdmin, auth.RoleOps}
	adminWrite = []auth.Role{auth.RoleAdmin, auth.RoleOps}
	opsOnly    = []auth.Role{auth.RoleOps}
)

// Policy says who may call each PaymentsService method:
//   - members and admins start top-ups (and read the checkout options) and read their own organization's payments, invoices and
//     billing profile; admins (and ops) edit the billing profile;
//   - the webhook is public: the Stripe signature over the raw body is its authentication;
//   - admins (and ops) save and remove the card and set the auto-recharge rule, members read them;
//   - refunds and review items are for ops.
func Policy() auth.Policy {
	return auth.Policy{
		method("CreateCheckoutSession"):    {Roles: members, OrgScoped: true},
		method("GetCheckoutOptions"):       {Roles: members, OrgScoped: true},
		method("HandleStripeWebhook"):      {Public: true},
		method("ListPayments"):             {Roles: memberRead, OrgScoped: true},
		method("GetPayment"):               {Roles: memberRead, OrgScoped: true},
		method("GetInvoice"):               {Roles: memberRead, OrgScoped: true},
		method("GetCreditNote"):            {Roles: memberRead, OrgScoped: true},
		method("GetBillingProfile"):        {Roles: memberRead, OrgScoped: true},
		method("UpdateBillingProfile"):     {Roles: adminWrite, OrgScoped: true},
		method("CreatePaymentMethodSetup"): {Roles: adminWrite, OrgScoped: true},
		method("RemovePaymentMethod"):      {Roles: adminWrite, OrgScoped: true},
		method("GetAutoRecharge"):          {Roles: memberRead, OrgScoped: true},
		method("UpdateAutoRecharge"):       {Roles: adminWrite, OrgScoped: true},
		method("RefundPayment"):            {Roles: opsOnly},
		method("ListReviewItems"):          {Roles: opsOnly},
		method("ResolveReviewItem"):        {Roles: opsOnly},
	}
}
