// Package oidc signs people in to the console against the organization's OpenID Connect
// provider: the authorization-code flow with PKCE (S256), state and nonce, the ID token verified
// (issuer, audience, nonce, expiry), tally's claims (org_id, roles, name, email) read from it,
// and the token the services verify (access or ID token) renewed with the refresh token.
// Provider discovery happens on first use and is retried after a failure, so a gateway starts
// while the provider is down and sign-ins work once it is back.
package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tallyhq/tally/pkg/auth"
)

// Which token the gateway forwards to the services (TALLY_OIDC_FORWARD_TOKEN).
const (
	ForwardAccessToken = "access_token"
	ForwardIDToken     = "id_token"
)

// DefaultTimeout bounds each call to the provider (discovery, token, keys).
const DefaultTimeout = 10 * time.Second

// discoveryRetry is the least time between two discovery attempts after a failure.
const discoveryRetry = 5 * time.Second

// ErrUnavailable reports that the provider cannot be reached or answered badly: retry later.
var ErrUnavailable = errors.New("the identity provider is unavailable")

// Config configures a Client.
type Config struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// <Issuer>/.well-known/openid-configuration. Required.
	Issuer string
	// ClientID is the console's client at the provider. Required.
	ClientID string
	// ClientSecret is empty for a public client (PKCE alone).
	ClientSecret string
	// RedirectURL is the gateway's /auth/callback as registered at the provider. Required.
	RedirectURL string
	// Scopes requested besides openid (default profile, email, offline_access).
	Scopes []string
	// ForwardToken is ForwardAccessToken (default) or ForwardIDToken.
	ForwardToken string
	// HTTPClient talks to the provider; nil means one with Timeout.
	HTTPClient *http.Client
	// Timeout bounds each call to the provider (default DefaultTimeout).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Client is one provider and the console's client there.
type Client struct {
	cfg    Config
	client *http.Client

	mu        sync.Mutex
	provider  *gooidc.Provider
	verifier  *gooidc.IDTokenVerifier
	oauth     *oauth2.Config
	lastTry   time.Time
	lastError error
}

// New checks cfg and returns a client; it does not contact the provider yet.
func New(cfg Config) (*Client, error) {
	var errs []error
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, errors.New("TALLY_OIDC_ISSUER is not an http(s) URL"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("TALLY_OIDC_CLIENT_ID is required"))
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, errors.New("TALLY_OIDC_REDIRECT_URL is not an http(s) URL"))
	}
	switch cfg.ForwardToken {
	case "":
		cfg.ForwardToken = ForwardAccessToken
	case ForwardAccessToken, ForwardIDToken:
	default:
		errs = append(errs, fmt.Errorf("TALLY_OIDC_FORWARD_TOKEN must be %s or %s", ForwardAccessToken, ForwardIDToken))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"profile", "email", "offline_access"}
	}
	if !slices.Contains(cfg.Scopes, gooidc.ScopeOpenID) {
		cfg.Scopes = append([]string{gooidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	return &Client{cfg: cfg, client: client}, nil
}

// ForwardToken says which token the sessions forward.
func (c *Client) ForwardToken() string { return c.cfg.ForwardToken }

// bounded returns a context for one call to the provider: its client, and the timeout.
func (c *Client) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	return gooidc.ClientContext(ctx, c.client), cancel
}

// discover returns the provider's endpoints, fetching the discovery document the first time
// (and again after a failure, at most every few seconds).
func (c *Client) discover(ctx context.Context) (*oauth2.Config, *gooidc.IDTokenVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.oauth, c.verifier, nil
	}
	if c.lastError != nil && c.cfg.Now().Sub(c.lastTry) < discoveryRetry {
		return nil, nil, c.lastError
	}
	c.lastTry = c.cfg.Now()
	dctx, cancel := c.bounded(ctx)
	defer cancel()
	p, err := gooidc.NewProvider(dctx, c.cfg.Issuer)
	if err != nil {
		c.lastError = fmt.Errorf("%w: discovery: %w", ErrUnavailable, err)
		return nil, nil, c.lastError
	}
	var meta struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err == nil && len(meta.Methods) > 0 && !slices.Contains(meta.Methods, "S256") {
		c.lastError = fmt.Errorf("the identity provider does not support PKCE with S256 (it offers %v)", meta.Methods)
		return nil, nil, c.lastError
	}
	c.provider, c.lastError = p, nil
	// The key set fetches with the client (bounded by its timeout), not a request's context.
	c.verifier = p.VerifierContext(gooidc.ClientContext(context.Background(), c.client), &gooidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Now}) //nolint:contextcheck // outlives the request on purpose
	c.oauth = &oauth2.Config{
		ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: c.cfg.RedirectURL, Scopes: c.cfg.Scopes,
	}
	return c.oauth, c.verifier, nil
}

// Flow is what a sign-in must remember between the redirect to the provider and the callback.
type Flow struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	// ReturnTo is the console path to go back to.
	ReturnTo string `json:"return_to"`
}

// AuthCodeURL returns where to send the browser to sign in for flow (its state, nonce and PKCE
// verifier, made by NewFlow); loginHint, when not empty, tells the provider who signs in.
func (c *Client) AuthCodeURL(ctx context.Context, flow Flow, loginHint string) (string, error) {
	oc, _, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(flow.Nonce), oauth2.S256ChallengeOption(flow.Verifier)}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", loginHint))
	}
	return oc.AuthCodeURL(flow.State, opts...), nil
}

// NewFlow returns a fresh state, nonce and PKCE verifier for a sign-in returning to returnTo.
func NewFlow(returnTo string, random func() (string, error)) (Flow, error) {
	state, err := random()
	if err != nil {
		return Flow{}, err
	}
	nonce, err := random()
	if err != nil {
		return Flow{}, err
	}
	return Flow{State: state, Nonce: nonce, Verifier: oauth2.GenerateVerifier(), ReturnTo: returnTo}, nil
}

// Grant is the outcome of a sign-in or a renewal: who signed in and the token to forward.
type Grant struct {
	Claims auth.Claims
	// Token is the forwarded token, valid from IssuedAt to Expiry.
	Token    string
	IssuedAt time.Time
	Expiry   time.Time
	// RefreshToken renews the grant; empty when the provider issued none.
	RefreshToken string
}

// Exchange trades the callback's code for tokens (with flow's PKCE verifier), verifies the ID
// token (issuer, audience, expiry, and flow's nonce) and returns the grant.
func (c *Client) Exchange(ctx context.Context, code string, flow Flow) (Grant, error) {
	oc, verifier, err := c.discover(ctx)
	if err != nil {
		return Grant{}, err
	}
	ectx, cancel := c.bounded(ctx)
	defer cancel()
	tok, err := oc.Exchange(ectx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		return Grant{}, fmt.Errorf("exchanging the code: %w", classify(err))
	}
	g, idt, err := c.grant(ectx, verifier, tok, nil)
	if err != nil {
		return Grant{}, err
	}
	if idt.Nonce == "" || !constantEqual(idt.Nonce, flow.Nonce) {
		return Grant{}, errors.New("the ID token's nonce does not match the sign-in")
	}
	return g, nil
}

// Refresh renews the grant of prev (the signed-in identity) with its refresh token. A refused
// refresh token, or an ID token for someone else, ends the sign-in: the error wraps ErrRefused.
func (c *Client) Refresh(ctx context.Context, prev auth.Claims, refreshToken string) (Grant, error) {
	if refreshToken == "" {
		return Grant{}, fmt.Errorf("%w: no refresh token", ErrRefused)
	}
	oc, verifier, err := c.discover(ctx)
	if err != nil {
		return Grant{}, err
	}
	rctx, cancel := c.bounded(ctx)
	defer cancel()
	tok, err := oc.TokenSource(rctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return Grant{}, fmt.Errorf("refreshing the token: %w", classify(err))
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken // the provider keeps the refresh token
	}
	g, _, err := c.grant(rctx, verifier, tok, &prev)
	if err != nil {
		return Grant{}, err
	}
	if g.Claims.Subject != prev.Subject {
		return Grant{}, fmt.Errorf("%w: the refreshed ID token is for another subject", ErrRefused)
	}
	return g, nil
}

// ErrRefused reports that the provider refused the grant (invalid_grant and the like): the
// sign-in has ended.
var ErrRefused = errors.New("the identity provider refused the grant")

// classify wraps the provider's refusals in ErrRefused and everything else in ErrUnavailable.
func classify(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
		return fmt.Errorf("%w: %s", ErrRefused, re.ErrorCode)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// idClaims are the claims of an ID token tally reads.
type idClaims struct {
	OrgID string   `json:"org_id"`
	Roles []string `json:"roles"`
	Name  string   `json:"name"`
	Email string   `json:"email"`
}

// grant verifies tok's ID token and returns the grant and the verified ID token.
// A refresh answered without an ID token (allowed by OpenID Connect) keeps prev's identity when
// the access token is forwarded; prev is nil for a sign-in, which always needs one.
func (c *Client) grant(ctx context.Context, verifier *gooidc.IDTokenVerifier, tok *oauth2.Token, prev *auth.Claims) (Grant, *gooidc.IDToken, error) {
	g := Grant{RefreshToken: tok.RefreshToken}
	rawID, _ := tok.Extra("id_token").(string)
	var idt *gooidc.IDToken
	switch {
	case rawID != "":
		var err error
		if idt, err = verifier.Verify(ctx, rawID); err != nil {
			return Grant{}, nil, fmt.Errorf("verifying the ID token: %w", err)
		}
		var ic idClaims
		if err := idt.Claims(&ic); err != nil {
			return Grant{}, nil, fmt.Errorf("reading the ID token's claims: %w", err)
		}
		roles, err := personRoles(ic.Roles)
		if err != nil {
			return Grant{}, nil, err
		}
		g.Claims = auth.Claims{Subject: idt.Subject, OrgID: ic.OrgID, Name: ic.Name, Email: ic.Email, Roles: roles}
	case prev != nil && c.cfg.ForwardToken == ForwardAccessToken:
		g.Claims = *prev
	default:
		return Grant{}, nil, errors.New("the provider returned no ID token")
	}
	switch c.cfg.ForwardToken {
	case ForwardIDToken:
		g.Token, g.IssuedAt, g.Expiry = rawID, idt.IssuedAt, idt.Expiry
	default:
		if tok.AccessToken == "" {
			return Grant{}, nil, errors.New("the provider returned no access token")
		}
		g.Token = tok.AccessToken
		// The services verify the token as a JWT: its own exp is what counts. The token
		// response's expires_in is only a fallback.
		iat, exp, err := auth.UnverifiedExpiry(tok.AccessToken)
		switch {
		case err == nil:
			g.IssuedAt, g.Expiry = iat, exp
		case !tok.Expiry.IsZero():
			g.Expiry = tok.Expiry
		default:
			return Grant{}, nil, fmt.Errorf("the access token has no readable expiry: %w", err)
		}
	}
	if g.IssuedAt.IsZero() || g.IssuedAt.After(c.cfg.Now()) {
		g.IssuedAt = c.cfg.Now()
	}
	if !g.Expiry.After(c.cfg.Now()) {
		return Grant{}, nil, errors.New("the forwarded token has already expired")
	}
	return g, idt, nil
}

// personRoles reads the roles of a person: member, admin and ops; the service role (tally's own
// services) is never granted through a browser sign-in.
func personRoles(raw []string) ([]auth.Role, error) {
	var out []auth.Role
	for _, r := range raw {
		switch role := auth.Role(r); role {
		case auth.RoleMember, auth.RoleAdmin, auth.RoleOps:
			out = append(out, role)
		case auth.RoleService:
			return nil, errors.New("the ID token carries the service role: not a person's sign-in")
		default:
			// Roles of other applications at the provider mean nothing to tally.
		}
	}
	return out, nil
}

func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
