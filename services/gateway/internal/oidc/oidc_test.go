package oidc_test

import (
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/auth/oidcdev"
	"github.com/tallyhq/tally/services/gateway/internal/oidc"
	"github.com/tallyhq/tally/services/gateway/internal/session"
)

func startProvider(t *testing.T) *oidcdev.Provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p, err := oidcdev.Start(ln, auth.DevPeople())
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

func newClient(t *testing.T, p *oidcdev.Provider, forward string) *oidc.Client {
	t.Helper()
	c, err := oidc.New(oidc.Config{
		Issuer: p.Issuer(), ClientID: oidcdev.ClientID, ClientSecret: oidcdev.ClientSecret,
		RedirectURL: "http://127.0.0.1:1/auth/callback", Scopes: oidcdev.Scopes, ForwardToken: forward,
	})
	require.NoError(t, err)
	return c
}

// authorize sends the browser's authorization request for flow and returns the code.
func authorize(t *testing.T, c *oidc.Client, flow oidc.Flow, hint string) string {
	t.Helper()
	target, err := c.AuthCodeURL(t.Context(), flow, hint)
	require.NoError(t, err)
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(target)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	back, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, flow.State, back.Query().Get("state"))
	return back.Query().Get("code")
}

func TestExchange(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	tests := []struct {
		name, forward, hint string
		wantSubject         string
		wantRoles           []auth.Role
	}{
		{"ID token, Grace by login_hint", oidc.ForwardIDToken, "grace", "user-grace", []auth.Role{auth.RoleAdmin}},
		{"access token, Ada by default", oidc.ForwardAccessToken, "", "user-ada", []auth.Role{auth.RoleMember}},
		{"ops by email", oidc.ForwardIDToken, "ops@tally.test", "ops-dev", []auth.Role{auth.RoleOps}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, p, tt.forward)
			flow, err := oidc.NewFlow("/billing", session.RandomToken)
			require.NoError(t, err)
			g, err := c.Exchange(t.Context(), authorize(t, c, flow, tt.hint), flow)
			require.NoError(t, err)
			require.Equal(t, tt.wantSubject, g.Claims.Subject)
			require.Equal(t, tt.wantRoles, g.Claims.Roles)
			require.NotEmpty(t, g.RefreshToken)
			require.WithinDuration(t, time.Now().Add(p.AccessTTL), g.Expiry, 5*time.Second, "the token's own exp, not expires_in")
			require.False(t, g.IssuedAt.After(time.Now()))
			iat, exp, err := auth.UnverifiedExpiry(g.Token)
			require.NoError(t, err)
			require.Equal(t, exp, g.Expiry)
			require.Equal(t, iat, g.IssuedAt)

			renewed, err := c.Refresh(t.Context(), g.Claims, g.RefreshToken)
			require.NoError(t, err)
			require.Equal(t, g.Claims, renewed.Claims)
			someoneElse := g.Claims
			someoneElse.Subject = "someone-else"
			_, err = c.Refresh(t.Context(), someoneElse, g.RefreshToken)
			require.ErrorIs(t, err, oidc.ErrRefused)
			_, err = c.Refresh(t.Context(), g.Claims, "forged")
			require.ErrorIs(t, err, oidc.ErrRefused)
		})
	}
}

func TestExchangeRefusals(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	c := newClient(t, p, oidc.ForwardIDToken)
	tests := []struct {
		name   string
		mangle func(*oidc.Flow)
	}{
		{"nonce of another sign-in", func(f *oidc.Flow) { f.Nonce = "another" }},
		{"PKCE verifier of another sign-in", func(f *oidc.Flow) { f.Verifier = "another-verifier-0123456789abcdef0123456789abcdef" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flow, err := oidc.NewFlow("/", session.RandomToken)
			require.NoError(t, err)
			code := authorize(t, c, flow, "")
			tt.mangle(&flow)
			_, err = c.Exchange(t.Context(), code, flow)
			require.Error(t, err)
		})
	}
}

func TestProviderUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err := oidc.New(oidc.Config{Issuer: "http://" + addr + "/oidc", ClientID: "x", RedirectURL: "http://127.0.0.1:1/cb", Timeout: 2 * time.Second})
	require.NoError(t, err)
	flow, err := oidc.NewFlow("/", session.RandomToken)
	require.NoError(t, err)
	_, err = c.AuthCodeURL(t.Context(), flow, "")
	require.ErrorIs(t, err, oidc.ErrUnavailable)
	// Within the retry pause the failure is answered without a new attempt.
	_, err = c.AuthCodeURL(t.Context(), flow, "")
	require.ErrorIs(t, err, oidc.ErrUnavailable)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  oidc.Config
	}{
		{"no issuer", oidc.Config{ClientID: "x", RedirectURL: "https://c/cb"}},
		{"issuer not a URL", oidc.Config{Issuer: "idp", ClientID: "x", RedirectURL: "https://c/cb"}},
		{"no client", oidc.Config{Issuer: "https://idp", RedirectURL: "https://c/cb"}},
		{"no redirect", oidc.Config{Issuer: "https://idp", ClientID: "x"}},
		{"unknown forward token", oidc.Config{Issuer: "https://idp", ClientID: "x", RedirectURL: "https://c/cb", ForwardToken: "refresh_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oidc.New(tt.cfg)
			require.Error(t, err)
		})
	}
}
