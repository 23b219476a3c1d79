// Package signin is the console's sign-in: GET /auth/login (to the OpenID Connect provider, or
// in development to the development sign-in page), GET /auth/callback, GET and POST /auth/dev
// (TALLY_ENV=development only), GET /auth/me and POST /auth/logout. A sign-in ends in the
// session cookie (package session); the token the services verify never reaches the browser's
// scripts.
package signin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/gateway/internal/oidc"
	"github.com/tallyhq/tally/services/gateway/internal/session"
)

// Defaults of a Service.
const (
	// DefaultSessionTTL is how long a sign-in lasts, its token renewed meanwhile.
	DefaultSessionTTL = 12 * time.Hour
	// DevTokenTTL is the lifetime of a development token; the session mints the next one.
	DevTokenTTL = 15 * time.Minute
	// flowTTL bounds the time between /auth/login and the callback.
	flowTTL = 10 * time.Minute
	// flowCookie remembers a sign-in's state, nonce and PKCE verifier until the callback.
	flowCookie = "tally_oidc_flow"
)

// DevConfig enables the development sign-in (TALLY_ENV=development only): tokens for the
// development users minted with the services' HS256 secret.
type DevConfig struct {
	// Secret is TALLY_JWT_SECRET, or server.DevJWTSecret.
	Secret []byte
	// Issuer and Audience are written into the tokens when set (TALLY_JWT_ISSUER, TALLY_JWT_AUDIENCE).
	Issuer   string
	Audience string
}

// Config configures a Service.
type Config struct {
	// Store keeps the sessions. Required.
	Store *session.Store
	// OIDC is the identity provider; nil when none is configured.
	OIDC *oidc.Client
	// Dev enables the development sign-in; nil outside development.
	Dev *DevConfig
	// SessionTTL is how long a sign-in lasts (default DefaultSessionTTL).
	SessionTTL time.Duration
	// Origins may post to the gateway with the cookie besides its own (console URL, CORS origins).
	Origins session.Origins
	Logger  *slog.Logger
}

// Service serves the sign-in routes and authenticates the REST routes by the session cookie.
type Service struct {
	cfg  Config
	auth *session.Authenticator
	log  *slog.Logger
}

// New returns the sign-in service; the store and the logger are required.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("signin: store is required")
	case cfg.Logger == nil:
		return nil, errors.New("signin: logger is required")
	case cfg.Dev != nil && len(cfg.Dev.Secret) < auth.MinSecretLen:
		return nil, fmt.Errorf("signin: the development secret (TALLY_JWT_SECRET) must be at least %d bytes", auth.MinSecretLen)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "signin")}
	renewers := map[string]session.Renewer{}
	if cfg.OIDC != nil {
		renewers[session.KindOIDC] = oidcRenewer{client: cfg.OIDC, now: cfg.Store.Now}
	}
	if cfg.Dev != nil {
		renewers[session.KindDev] = devRenewer{dev: *cfg.Dev, now: cfg.Store.Now}
	}
	a, err := session.NewAuthenticator(session.AuthenticatorConfig{Store: cfg.Store, Renewers: renewers, Origins: cfg.Origins, Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.auth = a
	return s, nil
}

// Authenticate wraps the REST routes: see session.Authenticator.Handler.
func (s *Service) Authenticate(next http.Handler) http.Handler { return s.auth.Handler(next) }

// route is one /auth/ route.
type route struct {
	method, path string
	handler      func(*Service, http.ResponseWriter, *http.Request)
}

// routes are the /auth/ routes.
var routes = []route{
	{http.MethodGet, "/auth/login", (*Service).login},
	{http.MethodGet, "/auth/callback", (*Service).callback},
	{http.MethodGet, "/auth/dev", (*Service).devPage},
	{http.MethodPost, "/auth/dev", (*Service).devSignIn},
	{http.MethodGet, "/auth/me", (*Service).me},
	{http.MethodPost, "/auth/logout", (*Service).logout},
}

// Routes are the methods of each /auth/ route (a GET route answers HEAD too), for the Allow
// header of the gateway's 405s.
func Routes() map[string][]string {
	m := map[string][]string{}
	for _, r := range routes {
		m[r.path] = append(m[r.path], r.method)
		if r.method == http.MethodGet {
			m[r.path] = append(m[r.path], http.MethodHead)
		}
	}
	return m
}

// Register adds the /auth/ routes to mux; unrouted answers the /auth/ requests none of them takes
// (an unknown path, or a known one with another method: the gateway's 404 and 405 with Allow).
func (s *Service) Register(mux *http.ServeMux, unrouted http.Handler) {
	for _, r := range routes {
		h := r.handler
		mux.HandleFunc(r.method+" "+r.path, func(w http.ResponseWriter, req *http.Request) { h(s, w, req) })
	}
	mux.Handle("/auth/", unrouted)
}

// login starts a sign-in: to the identity provider with a fresh state, nonce and PKCE verifier
// (remembered in a short-lived sealed cookie), or in development without one to /auth/dev.
func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	returnTo := SafeReturnTo(r.URL.Query().Get("return_to"))
	if s.cfg.OIDC == nil {
		if s.cfg.Dev != nil {
			http.Redirect(w, r, "/auth/dev?return_to="+url.QueryEscape(returnTo), http.StatusFound)
			return
		}
		server.WriteHTTPError(w, http.StatusNotFound, codes.NotFound, "sign-in is not configured (TALLY_OIDC_ISSUER)")
		return
	}
	flow, err := oidc.NewFlow(returnTo, session.RandomToken)
	if err != nil {
		s.internal(w, "sign-in flow not created", err)
		return
	}
	hint := r.URL.Query().Get("login_hint")
	if len(hint) > 256 || strings.ContainsFunc(hint, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		hint = ""
	}
	target, err := s.cfg.OIDC.AuthCodeURL(r.Context(), flow, hint)
	if err != nil {
		s.log.Warn("sign-in unavailable", "err", err)
		server.WriteHTTPError(w, http.StatusServiceUnavailable, codes.Unavailable, "the identity provider is unavailable, retry later")
		return
	}
	sealed, err := s.cfg.Store.Codec().Seal(flowCookie, flow, s.cfg.Store.Now().Add(flowTTL))
	if err != nil {
		s.internal(w, "sign-in flow not sealed", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: flowCookie, Value: sealed, Path: "/auth/", MaxAge: int(flowTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound) //nolint:gosec // G710: target is the configured provider's authorization URL
}

// callback completes a sign-in: the state must be the one this browser was sent with, the code
// is exchanged with its PKCE verifier and the ID token verified (with its nonce).
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OIDC == nil {
		server.WriteHTTPError(w, http.StatusNotFound, codes.NotFound, "sign-in is not configured (TALLY_OIDC_ISSUER)")
		return
	}
	// The flow is used once, whatever happens.
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: "", Path: "/auth/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	var flow oidc.Flow
	c, err := r.Cookie(flowCookie)
	if err == nil {
		err = s.cfg.Store.Codec().Open(flowCookie, c.Value, &flow)
	}
	if err != nil {
		server.WriteHTTPError(w, http.StatusBadRequest, codes.InvalidArgument, "no sign-in in progress in this browser (or it took too long): start again at /auth/login")
		return
	}
	q := r.URL.Query()
	if !constantEqual(q.Get("state"), flow.State) {
		s.log.Warn("sign-in refused: state mismatch")
		server.WriteHTTPError(w, http.StatusBadRequest, codes.InvalidArgument, "the sign-in's state does not match: start again at /auth/login")
		return
	}
	if e := q.Get("error"); e != "" {
		s.log.Info("sign-in refused by the identity provider", "error", textcheck.Truncate(e, 64))
		server.WriteHTTPError(w, http.StatusUnauthorized, codes.Unauthenticated, "the identity provider refused the sign-in")
		return
	}
	code := q.Get("code")
	if code == "" {
		server.WriteHTTPError(w, http.StatusBadRequest, codes.InvalidArgument, "the callback carries no code")
		return
	}
	g, err := s.cfg.OIDC.Exchange(r.Context(), code, flow)
	switch {
	case errors.Is(err, oidc.ErrUnavailable):
		s.log.Warn("sign-in failed: provider unavailable", "err", err)
		server.WriteHTTPError(w, http.StatusServiceUnavailable, codes.Unavailable, "the identity provider is unavailable, retry later")
		return
	case err != nil:
		s.log.Warn("sign-in refused", "err", err)
		server.WriteHTTPError(w, http.StatusUnauthorized, codes.Unauthenticated, "the sign-in was refused")
		return
	}
	now := s.cfg.Store.Now()
	end := now.Add(s.cfg.SessionTTL)
	if g.RefreshToken == "" && g.Expiry.Before(end) {
		end = g.Expiry // nothing renews the token: the sign-in ends with it
	}
	sess, err := session.New(session.KindOIDC, g.Claims, g.Token, g.IssuedAt, g.Expiry, end)
	if err != nil {
		s.internal(w, "session not created", err)
		return
	}
	sess.RefreshToken = g.RefreshToken
	if err := s.cfg.Store.Save(w, sess); err != nil {
		s.internal(w, "session not saved", err)
		return
	}
	s.log.Info("signed in", "kind", session.KindOIDC, "sub", g.Claims.Subject, "org", g.Claims.OrgID)
	http.Redirect(w, r, flow.ReturnTo, http.StatusFound)
}

// meResponse is GET /auth/me.
type meResponse struct {
	Subject   string      `json:"subject"`
	Name      string      `json:"name"`
	Email     string      `json:"email"`
	OrgID     string      `json:"orgId"`
	Roles     []auth.Role `json:"roles"`
	CSRFToken string      `json:"csrfToken"`
	ExpiresAt string      `json:"expiresAt"`
}

// me tells the console who is signed in and the CSRF token of its writes.
func (s *Service) me(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sess, ok := s.auth.Session(w, r)
	if !ok {
		server.WriteHTTPError(w, http.StatusUnauthorized, codes.Unauthenticated, "not signed in: sign in at /auth/login")
		return
	}
	roles := sess.Roles
	if roles == nil {
		roles = []auth.Role{}
	}
	writeJSON(w, http.StatusOK, meResponse{
		Subject: sess.Subject, Name: sess.Name, Email: sess.Email, OrgID: sess.OrgID, Roles: roles,
		CSRFToken: sess.CSRF, ExpiresAt: sess.ExpiresAt.UTC().Format(time.RFC3339),
	})
}

// logout ends the sign-in: the CSRF token is required when a session is there.
func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sess, found, err := s.cfg.Store.Load(r)
	if found && err == nil {
		if err := s.auth.CheckWrite(r, sess); err != nil {
			server.WriteHTTPError(w, http.StatusForbidden, codes.PermissionDenied, err.Error())
			return
		}
		s.log.Info("signed out", "kind", sess.Kind, "sub", sess.Subject)
	}
	s.cfg.Store.Clear(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) internal(w http.ResponseWriter, msg string, err error) {
	s.log.Error(msg, "err", err)
	server.WriteHTTPError(w, http.StatusInternalServerError, codes.Internal, "internal error")
}

// SafeReturnTo returns raw when it is a path of this site ("/billing?x=1"), else "/": never
// another host ("//evil.test", "https://…", "/\evil.test").
func SafeReturnTo(raw string) string {
	if raw == "" || len(raw) > 2048 || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") ||
		strings.ContainsAny(raw, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return u.RequestURI()
}

// oidcRenewer renews OIDC sessions with their refresh token.
type oidcRenewer struct {
	client *oidc.Client
	now    func() time.Time
}

func (o oidcRenewer) Renew(ctx context.Context, s session.Session) (session.Session, error) {
	if s.RefreshToken == "" {
		return session.Session{}, session.ErrNotRenewable
	}
	prev := s.Claims()
	prev.ExpiresAt = time.Time{}
	g, err := o.client.Refresh(ctx, prev, s.RefreshToken)
	if errors.Is(err, oidc.ErrRefused) {
		return session.Session{}, fmt.Errorf("%w: %w", session.ErrSignedOut, err)
	}
	if err != nil {
		return session.Session{}, err
	}
	s.Token, s.TokenIssuedAt, s.TokenExpiry, s.RefreshToken = g.Token, g.IssuedAt, g.Expiry, g.RefreshToken
	s.Name, s.Email, s.OrgID, s.Roles = g.Claims.Name, g.Claims.Email, g.Claims.OrgID, g.Claims.Roles
	return s, nil
}

// devRenewer mints the next development token of a development session.
type devRenewer struct {
	dev DevConfig
	now func() time.Time
}

func (d devRenewer) Renew(_ context.Context, s session.Session) (session.Session, error) {
	tok, iat, exp, err := d.dev.mint(s.Claims(), d.now())
	if err != nil {
		return session.Session{}, err
	}
	s.Token, s.TokenIssuedAt, s.TokenExpiry = tok, iat, exp
	return s, nil
}

// mint returns a development token for c valid for DevTokenTTL from now.
func (d DevConfig) mint(c auth.Claims, now time.Time) (string, time.Time, time.Time, error) {
	opts := []auth.Option{auth.WithClock(func() time.Time { return now })}
	if d.Issuer != "" {
		opts = append(opts, auth.WithIssuer(d.Issuer))
	}
	if d.Audience != "" {
		opts = append(opts, auth.WithAudience(d.Audience))
	}
	c.ExpiresAt = time.Time{}
	tok, err := auth.Mint(d.Secret, c, DevTokenTTL, opts...)
	if err != nil {
		return "", time.Time{}, time.Time{}, fmt.Errorf("minting a development token: %w", err)
	}
	// Mint writes whole seconds.
	iat := time.Unix(now.Unix(), 0)
	return tok, iat, iat.Add(DevTokenTTL), nil
}
