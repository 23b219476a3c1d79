// Package auth authenticates callers of tally's gRPC servers with JWTs and authorizes
// every RPC against a deny-by-default Policy.
//
// Servers install UnaryServerInterceptor and StreamServerInterceptor; clients attach a
// token with TokenCredentials or OutgoingContext. Tokens are verified by a Verifier:
// NewJWKSVerifier in production (RS256/ES256), NewHS256Verifier in development and for
// service-to-service tokens minted with Mint.
package auth

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Role is a coarse permission carried in a token's roles claim.
type Role string

// Roles known to the platform.
const (
	// RoleMember is a user acting inside their own organization.
	RoleMember Role = "member"
	// RoleAdmin is an organization administrator, still bound to their organization.
	RoleAdmin Role = "admin"
	// RoleService is one of tally's own services calling another.
	RoleService Role = "service"
	// RoleOps is platform operations staff; admitted only where a rule lists it.
	RoleOps Role = "ops"
)

// servicePrefix prefixes the subject of internal service identities.
const servicePrefix = "service:"

// Claims is the verified identity of a caller.
type Claims struct {
	Subject string
	OrgID   string
	Email   string
	Name    string
	Roles   []Role
	// ExpiresAt is the token's exp; zero for claims that did not come from a token.
	ExpiresAt time.Time
}

// Has reports whether the claims carry role r.
func (c Claims) Has(r Role) bool {
	return slices.Contains(c.Roles, r)
}

// ServiceName returns the name of the internal service the claims identify, or "" when
// the caller is not a service (subject "service:<name>" and the service role are both required).
func (c Claims) ServiceName() string {
	name, ok := strings.CutPrefix(c.Subject, servicePrefix)
	if !ok || name == "" || !c.Has(RoleService) {
		return ""
	}
	return name
}

// claimsKey is the context key under which verified claims are stored.
type claimsKey struct{}

// WithClaims returns a copy of ctx carrying c.
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the claims stored in ctx by the interceptors or WithClaims.
func FromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(Claims)
	return c, ok
}
