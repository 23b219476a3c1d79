package auth_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
)

func TestClaimsHasAndServiceName(t *testing.T) {
	tests := []struct {
		name        string
		claims      auth.Claims
		wantService string
		wantAdmin   bool
	}{
		{name: "member", claims: auth.Claims{Subject: "user-1", Roles: []auth.Role{auth.RoleMember}}},
		{name: "admin", claims: auth.Claims{Subject: "user-2", Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin}}, wantAdmin: true},
		{name: "service", claims: auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}}, wantService: "payments"},
		{name: "service subject without role", claims: auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleMember}}},
		{name: "service role without prefix", claims: auth.Claims{Subject: "payments", Roles: []auth.Role{auth.RoleService}}},
		{name: "empty service name", claims: auth.Claims{Subject: "service:", Roles: []auth.Role{auth.RoleService}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.wantService, tt.claims.ServiceName())
			require.Equal(t, tt.wantAdmin, tt.claims.Has(auth.RoleAdmin))
		})
	}
}

func TestClaimsContext(t *testing.T) {
	_, ok := auth.FromContext(t.Context())
	require.False(t, ok)

	want := auth.Claims{Subject: "user-1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}
	got, ok := auth.FromContext(auth.WithClaims(t.Context(), want))
	require.True(t, ok)
	require.Equal(t, want, got)
}
