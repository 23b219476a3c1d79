package grpcapi

import (
	"github.com/tallyhq/tally/pkg/auth"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
)

// Policy is who may call each method of the pricing service. Reads and quotes are public (the
// pricing page and the instance form call them without a token); changes are ops only; the
// catalog stream is for tally's own services (and ops tooling).
func Policy() auth.Policy {
	public := auth.Rule{Public: true}
	ops := auth.Rule{Roles: []auth.Role{auth.RoleOps}}
	return auth.Policy{
		pricingv1.PricingService_ListModelPrices_FullMethodName:    public,
		pricingv1.PricingService_GetModelPrice_FullMethodName:      public,
		pricingv1.PricingService_ListInstancePrices_FullMethodName: public,
		pricingv1.PricingService_Quote_FullMethodName:              public,
		pricingv1.PricingService_SetModelPrice_FullMethodName:      ops,
		pricingv1.PricingService_SetInstancePrice_FullMethodName:   ops,
		pricingv1.PricingService_WatchCatalog_FullMethodName:       {Roles: []auth.Role{auth.RoleService, auth.RoleOps}},
	}
}
