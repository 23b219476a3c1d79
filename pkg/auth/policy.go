package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
)

// Rule says who may call one gRPC method.
type Rule struct {
	// Public admits every caller, with or without a token.
	Public bool
	// Roles admits callers holding any of these roles. RoleOps is admitted only when listed.
	Roles []Role
	// Services admits internal services by name (see Claims.ServiceName).
	Services []string
	// OrgScoped requires callers admitted only through org-bound roles such as member or admin
	// to send a request whose GetOrgId equals their token's org_id.
	OrgScoped bool
}

// Policy maps full gRPC method names ("/tally.ledger.v1.LedgerService/Debit") to rules.
// Methods missing from the policy are denied.
type Policy map[string]Rule

// orgRequest is a request naming the organization it acts for.
type orgRequest interface {
	GetOrgId() string
}

// Check authorizes a call of fullMethod by claims (nil when the caller sent no valid token) with
// request req. It returns a gRPC status error: PermissionDenied for methods not in the policy,
// wrong roles or another organization, Unauthenticated when a non-public method has no claims.
func (p Policy) Check(_ context.Context, claims *Claims, fullMethod string, req any) error {
	orgBound, err := p.admit(claims, fullMethod)
	if err != nil {
		return err
	}
	if orgBound {
		return checkOrg(claims, fullMethod, req)
	}
	return nil
}

// admit checks everything but the request's organization. orgBound reports whether the caller's
// organization must still be matched against the request.
func (p Policy) admit(claims *Claims, fullMethod string) (orgBound bool, err error) {
	rule, ok := p[fullMethod]
	if !ok {
		return false, notInPolicy(fullMethod)
	}
	if rule.Public {
		return false, nil
	}
	if claims == nil {
		return false, refuse(codes.Unauthenticated, errNoToken.Error(), nil)
	}
	// Service and ops callers admitted by the rule act for any organization.
	if name := claims.ServiceName(); name != "" && slices.Contains(rule.Services, name) {
		return false, nil
	}
	admitted := false
	for _, r := range claims.Roles {
		if !slices.Contains(rule.Roles, r) {
			continue
		}
		if r == RoleService || r == RoleOps {
			return false, nil
		}
		admitted = true
	}
	if !admitted {
		return false, refuse(codes.PermissionDenied, "your roles may not call this method", fmt.Errorf("caller %q may not call %s", claims.Subject, fullMethod))
	}
	return rule.OrgScoped, nil
}

// checkOrg requires req to name claims' organization.
func checkOrg(claims *Claims, fullMethod string, req any) error {
	r, ok := req.(orgRequest)
	if !ok {
		return refuse(codes.PermissionDenied, "the request names no organization", fmt.Errorf("method %s is organization-scoped", fullMethod))
	}
	org := r.GetOrgId()
	if org == "" || claims.OrgID == "" || org != claims.OrgID {
		return refuse(codes.PermissionDenied, "the organization is not yours", fmt.Errorf("caller %q of organization %q asked for %q", claims.Subject, claims.OrgID, org))
	}
	return nil
}

// notInPolicy refuses a method the policy does not list.
func notInPolicy(fullMethod string) error {
	return refuse(codes.PermissionDenied, "no caller may call this method", fmt.Errorf("method %s is not in the policy", fullMethod))
}

// PolicyRow is one rule of a Policy, for documentation and tests.
type PolicyRow struct {
	Method    string
	Roles     []Role
	Services  []string
	Public    bool
	OrgScoped bool
}

// Table returns the policy's rules sorted by method.
func (p Policy) Table() []PolicyRow {
	rows := make([]PolicyRow, 0, len(p))
	for m, r := range p {
		rows = append(rows, PolicyRow{
			Method:    m,
			Roles:     slices.Clone(r.Roles),
			Services:  slices.Clone(r.Services),
			Public:    r.Public,
			OrgScoped: r.OrgScoped,
		})
	}
	slices.SortFunc(rows, func(a, b PolicyRow) int { return strings.Compare(a.Method, b.Method) })
	return rows
}
