// Package oidcdev runs a real OpenID Connect provider (github.com/oauth2-proxy/mockoidc) whose ID
// tokens carry tally's claims (org_id, roles, name, email): for the gateway's sign-in tests and
// for `tally-oidc-dev`, which the browser tests start. It signs anyone in without a password:
// never expose it beyond the loopback interface.
package oidcdev

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/tallyhq/tally/pkg/auth"
)

// Fixed client credentials, so a gateway configured once keeps working across restarts.
const (
	ClientID     = "tally-console"
	ClientSecret = "tally-console-development-secret"
)

// Scopes are the scopes to ask for besides openid: mockoidc refuses any it does not know
// (offline_access among them), and issues a refresh token anyway.
var Scopes = []string{"profile", "email"}

// Provider is a running provider.
type Provider struct {
	*mockoidc.MockOIDC
	mu       sync.Mutex
	byHint   map[string]auth.Claims
	fallback auth.Claims
	// refreshes counts the refresh-token grants answered.
	refreshes atomic.Int64
}

// Refreshes returns how many refresh-token grants the token endpoint was asked for.
func (p *Provider) Refreshes() int64 { return p.refreshes.Load() }

// Start serves a provider on ln. The user signed in by an authorization request is the next
// queued with Queue, else the one named by the request's login_hint (a key or email of users),
// else the first of users.
func Start(ln net.Listener, users []auth.DevUser) (*Provider, error) {
	if len(users) == 0 {
		return nil, errors.New("oidcdev: at least one user is required")
	}
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return nil, fmt.Errorf("oidcdev: %w", err)
	}
	m.ClientID, m.ClientSecret = ClientID, ClientSecret
	m.CodeChallengeMethodsSupported = []string{mockoidc.CodeChallengeMethodS256}
	p := &Provider{MockOIDC: m, byHint: map[string]auth.Claims{}, fallback: users[0].Claims}
	for _, u := range users {
		p.byHint[u.Key] = u.Claims
		if u.Claims.Email != "" {
			p.byHint[u.Claims.Email] = u.Claims
		}
	}
	if err := m.AddMiddleware(p.serialize); err != nil {
		return nil, fmt.Errorf("oidcdev: %w", err)
	}
	if err := m.Start(ln, nil); err != nil {
		return nil, fmt.Errorf("oidcdev: %w", err)
	}
	return p, nil
}

// Queue makes the next authorization request sign c in.
func (p *Provider) Queue(c auth.Claims) { p.QueueUser(User(c)) }

// serialize runs one request at a time (mockoidc's session store is a plain map) and picks the
// user of an authorization request that has none queued.
func (p *Provider) serialize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.URL.Path == mockoidc.TokenEndpoint && r.Method == http.MethodPost {
			if err := r.ParseForm(); err == nil && r.PostForm.Get("grant_type") == "refresh_token" {
				p.refreshes.Add(1)
			}
		}
		if r.URL.Path == mockoidc.AuthorizationEndpoint {
			p.UserQueue.Lock()
			empty := len(p.UserQueue.Queue) == 0
			p.UserQueue.Unlock()
			if empty {
				c, ok := p.byHint[r.URL.Query().Get("login_hint")]
				if !ok {
					c = p.fallback
				}
				p.QueueUser(User(c))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// User returns a mockoidc user whose ID token carries c.
func User(c auth.Claims) mockoidc.User { return tallyUser{c: c} }

type tallyUser struct{ c auth.Claims }

func (u tallyUser) ID() string { return u.c.Subject }

func (u tallyUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.c.Subject, "email": u.c.Email, "name": u.c.Name})
}

// idClaims are the ID token's claims: mockoidc's registered claims and nonce, and tally's.
type idClaims struct {
	*mockoidc.IDTokenClaims
	OrgID string      `json:"org_id,omitempty"`
	Roles []auth.Role `json:"roles,omitempty"`
	Name  string      `json:"name,omitempty"`
	Email string      `json:"email,omitempty"`
}

func (u tallyUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return idClaims{IDTokenClaims: base, OrgID: u.c.OrgID, Roles: u.c.Roles, Name: u.c.Name, Email: u.c.Email}, nil
}
