package auth_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
)

// Methods of the test policy.
const (
	mPublic     = "/tally.test.v1.TestService/Public"
	mMembers    = "/tally.test.v1.TestService/Members"
	mAdminOnly  = "/tally.test.v1.TestService/AdminOnly"
	mInternal   = "/tally.test.v1.TestService/Internal"
	mAnyService = "/tally.test.v1.TestService/AnyService"
	mOrgRead    = "/tally.test.v1.TestService/OrgRead"
	mWatch      = "/tally.test.v1.TestService/Watch"
	mMissing    = "/tally.test.v1.TestService/Missing"
)

// testPolicy covers every kind of rule.
func testPolicy() auth.Policy {
	return auth.Policy{
		mPublic:     {Public: true},
		mMembers:    {Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin}},
		mAdminOnly:  {Roles: []auth.Role{auth.RoleAdmin}},
		mInternal:   {Services: []string{"payments"}},
		mAnyService: {Roles: []auth.Role{auth.RoleService}},
		mOrgRead: {
			Roles:     []auth.Role{auth.RoleMember, auth.RoleAdmin, auth.RoleOps},
			Services:  []string{"billing"},
			OrgScoped: true,
		},
		mWatch: {Roles: []auth.Role{auth.RoleMember}, Services: []string{"billing"}, OrgScoped: true},
	}
}

// orgReq is a request naming an organization.
type orgReq struct {
	OrgId string `json:"org_id"`
}

// GetOrgId returns the organization the request acts for.
func (r *orgReq) GetOrgId() string { return r.OrgId }

func member(org string) *auth.Claims {
	return &auth.Claims{Subject: "user-1", OrgID: org, Roles: []auth.Role{auth.RoleMember}}
}

func admin(org string) *auth.Claims {
	return &auth.Claims{Subject: "user-2", OrgID: org, Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin}}
}

func service(name string) *auth.Claims {
	return &auth.Claims{Subject: "service:" + name, Roles: []auth.Role{auth.RoleService}}
}

func ops() *auth.Claims {
	return &auth.Claims{Subject: "ops-1", OrgID: "tally", Roles: []auth.Role{auth.RoleOps}}
}

func TestPolicyCheck(t *testing.T) {
	p := testPolicy()
	tests := []struct {
		name     string
		claims   *auth.Claims
		method   string
		req      any
		wantCode codes.Code
		wantMsg  string
		// wantDetail is in the detail logged by the server, never in the caller's message.
		wantDetail string
	}{
		{name: "method not in policy", claims: admin("acme"), method: mMissing, wantCode: codes.PermissionDenied, wantMsg: "no caller may call this method", wantDetail: mMissing},
		{name: "method not in policy without token", method: mMissing, wantCode: codes.PermissionDenied, wantMsg: "no caller may call this method"},
		{name: "public without token", method: mPublic},
		{name: "public with token", claims: member("acme"), method: mPublic},
		{name: "missing token", method: mMembers, wantCode: codes.Unauthenticated, wantMsg: "missing bearer token"},
		{name: "member admitted", claims: member("acme"), method: mMembers},
		{name: "wrong role", claims: member("acme"), method: mAdminOnly, wantCode: codes.PermissionDenied, wantMsg: "your roles may not call this method", wantDetail: mAdminOnly},
		{name: "admin admitted", claims: admin("acme"), method: mAdminOnly},
		{name: "ops only where listed", claims: ops(), method: mMembers, wantCode: codes.PermissionDenied, wantMsg: "your roles may not call this method", wantDetail: `caller "ops-1" may not call ` + mMembers},
		{name: "service admitted by name", claims: service("payments"), method: mInternal},
		{name: "other service refused", claims: service("ledger"), method: mInternal, wantCode: codes.PermissionDenied, wantDetail: mInternal},
		{name: "users refused by service-only rule", claims: admin("acme"), method: mInternal, wantCode: codes.PermissionDenied},
		{
			name:   "service subject without service role refused",
			claims: &auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleMember}}, method: mInternal,
			wantCode: codes.PermissionDenied,
		},
		{name: "any service by role", claims: service("ledger"), method: mAnyService},
		{name: "service role not listed", claims: service("ledger"), method: mMembers, wantCode: codes.PermissionDenied},
		{name: "member in own org", claims: member("acme"), method: mOrgRead, req: &orgReq{OrgId: "acme"}},
		{name: "admin in own org", claims: admin("acme"), method: mOrgRead, req: &orgReq{OrgId: "acme"}},
		{name: "member in other org", claims: member("acme"), method: mOrgRead, req: &orgReq{OrgId: "globex"}, wantCode: codes.PermissionDenied, wantMsg: "the organization is not yours", wantDetail: `asked for "globex"`},
		{name: "admin in other org", claims: admin("acme"), method: mOrgRead, req: &orgReq{OrgId: "globex"}, wantCode: codes.PermissionDenied, wantMsg: "is not yours"},
		{name: "member with empty request org", claims: member("acme"), method: mOrgRead, req: &orgReq{}, wantCode: codes.PermissionDenied, wantMsg: "is not yours"},
		{name: "member without org claim", claims: member(""), method: mOrgRead, req: &orgReq{}, wantCode: codes.PermissionDenied, wantMsg: "is not yours"},
		{name: "request without org", claims: member("acme"), method: mOrgRead, req: struct{}{}, wantCode: codes.PermissionDenied, wantMsg: "names no organization"},
		{name: "ops in any org", claims: ops(), method: mOrgRead, req: &orgReq{OrgId: "globex"}},
		{name: "listed service in any org", claims: service("billing"), method: mOrgRead, req: &orgReq{OrgId: "globex"}},
		{name: "unlisted service refused", claims: service("ledger"), method: mOrgRead, req: &orgReq{OrgId: "globex"}, wantCode: codes.PermissionDenied},
		{
			name:   "member with ops acts for any org",
			claims: &auth.Claims{Subject: "user-3", OrgID: "acme", Roles: []auth.Role{auth.RoleMember, auth.RoleOps}},
			method: mOrgRead, req: &orgReq{OrgId: "globex"},
		},
		{
			name:   "ops not admitted by rule stays org-bound",
			claims: &auth.Claims{Subject: "user-3", OrgID: "acme", Roles: []auth.Role{auth.RoleMember, auth.RoleOps}},
			method: mWatch, req: &orgReq{OrgId: "globex"}, wantCode: codes.PermissionDenied, wantMsg: "is not yours",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(t.Context(), tt.claims, tt.method, tt.req)
			require.Equal(t, tt.wantCode, status.Code(err), "err: %v", err)
			msg := status.Convert(err).Message()
			if tt.wantMsg != "" {
				require.Contains(t, msg, tt.wantMsg)
			}
			require.NotContains(t, msg, "/tally.", "messages name no method")
			require.NotContains(t, msg, "globex", "messages do not echo the request")
			if tt.wantDetail != "" {
				require.ErrorContains(t, auth.RefusalDetail(err), tt.wantDetail)
			}
		})
	}
}

func TestPolicyTable(t *testing.T) {
	p := testPolicy()
	rows := p.Table()
	require.Len(t, rows, len(p))
	for i, row := range rows {
		t.Run(row.Method, func(t *testing.T) {
			if i > 0 {
				require.Less(t, rows[i-1].Method, row.Method)
			}
			rule := p[row.Method]
			require.Equal(t, rule.Public, row.Public)
			require.Equal(t, rule.OrgScoped, row.OrgScoped)
			require.Equal(t, rule.Roles, row.Roles)
			require.Equal(t, rule.Services, row.Services)
			require.True(t, row.Public || len(row.Roles)+len(row.Services) > 0, "rule admits nobody")
		})
	}

	require.Equal(t, mAdminOnly, rows[0].Method)
	rows[0].Roles[0] = auth.RoleOps
	require.Equal(t, []auth.Role{auth.RoleAdmin}, p[mAdminOnly].Roles, "Table must copy the rules")
}
