package auth_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/auth/authtest"
)

func TestAlgVerifier(t *testing.T) {
	t.Parallel()
	const secret = "alg-verifier-secret-0123456789abcdef"
	p := authtest.New(t)
	jwks, err := auth.NewJWKSVerifier(t.Context(), auth.JWKSConfig{URL: p.JWKSURL(), Client: p.Client()},
		auth.WithIssuer(p.Issuer), auth.WithAudience(authtest.Audience))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return jwks.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	hs, err := auth.NewHS256Verifier([]byte(secret))
	require.NoError(t, err)
	v, err := auth.NewAlgVerifier(hs, jwks)
	require.NoError(t, err)
	_, err = auth.NewAlgVerifier(hs, nil)
	require.Error(t, err)

	person := auth.Claims{Subject: "user-ada", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}
	service := auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}}
	minted, err := auth.Mint([]byte(secret), service, time.Minute)
	require.NoError(t, err)
	otherSecret, err := auth.Mint([]byte(secret+"x"), service, time.Minute)
	require.NoError(t, err)
	es := p.Token(t, person)
	p.SignWith("rs-1")
	rs := p.Token(t, person)
	// The provider's token relabelled alg none must not pass.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + strings.SplitN(es, ".", 2)[1]

	tests := []struct {
		name    string
		token   string
		subject string
	}{
		{"HS256 service token", minted, "service:payments"},
		{"ES256 provider token", es, "user-ada"},
		{"RS256 provider token", rs, "user-ada"},
		{"HS256 with another secret", otherSecret, ""},
		{"alg none", none, ""},
		{"garbage", "not-a-jwt", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(t.Context(), tt.token)
			if tt.subject == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.subject, c.Subject)
		})
	}
}
