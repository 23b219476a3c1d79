package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
)

// DevJWTSecret is the HS256 secret used with TALLY_ENV=development when TALLY_JWT_SECRET is
// unset. It is public, so a service outside development refuses it.
const DevJWTSecret = "tally-development-secret-change-me"

// Service identities.
const (
	// serviceTokenTTL is the lifetime of the tokens a service mints for itself in HS256 mode
	// (at most the maximum token lifetime); a new one is minted after two thirds of it.
	serviceTokenTTL = 15 * time.Minute
	// identityCheckReady and identityCheckNotReady are how often a service checks its own
	// token while it is valid, and while it is not.
	identityCheckReady    = 10 * time.Second
	identityCheckNotReady = time.Second
	// identityCheckTimeout bounds one check (a token request to the identity provider).
	identityCheckTimeout = 10 * time.Second
	// httpTimeout bounds the requests to the JWKS and the token endpoint by default.
	httpTimeout = 10 * time.Second
)

// AuthConfig says how a service verifies its callers' tokens and what it presents to the others.
// LoadAuthConfig reads it from the environment; tests fill it in.
type AuthConfig struct {
	// Development relaxes the production rules (TALLY_ENV=development): the built-in secret,
	// JWKS over plain http, no issuer and audience required.
	Development bool
	// JWKSURL selects RS256/ES256 verification against a JWKS (production identity provider).
	JWKSURL string
	// JWTSecret selects HS256 verification when JWKSURL is empty, and signs the services' own
	// tokens then. At least 32 bytes. With JWKSURL as well, both kinds of token are accepted
	// (dispatched on their alg: auth.NewAlgVerifier) and the services sign their own tokens
	// with the secret unless another identity source is set.
	JWTSecret string
	// Issuer and Audience, when set, are required in every token (iss, aud) and written into
	// the tokens a service mints. Required with a JWKS outside development.
	Issuer   string
	Audience string
	// MaxLifetime is the longest validity (exp − iat) of an accepted token; zero means 24h.
	MaxLifetime time.Duration
	// JWKSRefresh is how often the JWKS is fetched again (zero means 5m): a removed key stops
	// being accepted within it. JWKSMinRefetch is the least time between two fetches (zero
	// means 5s).
	JWKSRefresh    time.Duration
	JWKSMinRefetch time.Duration
	// The service's own identity (token subject service:<name>, role service). In HS256 mode it
	// mints short-lived tokens itself; in JWKS mode set exactly one of: ServiceTokenFile (re-read
	// when it changes), OAuthClientID with OAuthClientSecret (client credentials against the
	// issuer's token endpoint, or OAuthTokenURL), or ServiceToken (static; refused once expired).
	ServiceToken      string
	ServiceTokenFile  string
	OAuthClientID     string
	OAuthClientSecret string
	OAuthScope        string
	OAuthTokenURL     string
	// HTTPClient fetches the JWKS and talks to the token endpoint; nil means a client with a 10s
	// timeout.
	HTTPClient *http.Client
}

// LoadAuthConfig reads the authentication settings of a service that calls other services (see
// the README's configuration table), recording every problem in e: outside development a
// service needs TALLY_JWT_SECRET (at least 32 bytes, not the development one) or TALLY_JWKS_URL,
// and with a JWKS the issuer, the audience and its own identity.
func LoadAuthConfig(e *config.Env) AuthConfig {
	return loadAuthConfig(e, true)
}

// LoadVerifierConfig is LoadAuthConfig for a service that calls no other service: it needs no
// identity of its own.
func LoadVerifierConfig(e *config.Env) AuthConfig {
	return loadAuthConfig(e, false)
}

func loadAuthConfig(e *config.Env, needIdentity bool) AuthConfig {
	c := AuthConfig{
		Development:       e.Development(),
		JWKSURL:           e.String("TALLY_JWKS_URL", ""),
		JWTSecret:         e.String("TALLY_JWT_SECRET", ""),
		Issuer:            e.String("TALLY_JWT_ISSUER", ""),
		Audience:          e.String("TALLY_JWT_AUDIENCE", ""),
		MaxLifetime:       e.Duration("TALLY_JWT_MAX_LIFETIME", auth.DefaultMaxLifetime),
		JWKSRefresh:       e.Duration("TALLY_JWKS_REFRESH", auth.DefaultJWKSRefresh),
		JWKSMinRefetch:    e.Duration("TALLY_JWKS_MIN_REFETCH", auth.DefaultJWKSMinRefetch),
		ServiceToken:      e.String("TALLY_SERVICE_TOKEN", ""),
		ServiceTokenFile:  e.String("TALLY_SERVICE_TOKEN_FILE", ""),
		OAuthClientID:     e.String("TALLY_OAUTH_CLIENT_ID", ""),
		OAuthClientSecret: e.String("TALLY_OAUTH_CLIENT_SECRET", ""),
		OAuthScope:        e.String("TALLY_OAUTH_SCOPE", ""),
		OAuthTokenURL:     e.String("TALLY_OAUTH_TOKEN_URL", ""),
	}
	if c.Development && c.JWKSURL == "" && c.JWTSecret == "" {
		c.JWTSecret = DevJWTSecret
	}
	e.Invalid(c.validate(needIdentity))
	return c
}

// validate checks the settings; needIdentity requires an identity source in JWKS mode.
func (c AuthConfig) validate(needIdentity bool) error {
	if c.JWKSURL == "" && c.JWTSecret == "" {
		return errors.New("TALLY_JWT_SECRET (at least 32 bytes) or TALLY_JWKS_URL is required; " +
			"TALLY_ENV=development uses a built-in development secret")
	}
	// With both set, HS256 tokens (the services' own) are accepted beside the provider's: the
	// secret is held to the same rules either way.
	errs := []error{c.validateSecret()}
	if c.JWKSURL != "" {
		errs = append(errs, c.validateJWKS())
	}
	if c.MaxLifetime <= 0 || c.JWKSRefresh <= 0 || c.JWKSMinRefetch <= 0 {
		errs = append(errs, errors.New("TALLY_JWT_MAX_LIFETIME, TALLY_JWKS_REFRESH and TALLY_JWKS_MIN_REFETCH must be positive"))
	}
	sources := 0
	if c.ServiceToken != "" {
		sources++
		if _, err := auth.NewStaticTokenSource(c.ServiceToken); err != nil {
			errs = append(errs, fmt.Errorf("TALLY_SERVICE_TOKEN: %w", err))
		}
	}
	if c.ServiceTokenFile != "" {
		sources++
	}
	if c.OAuthClientID != "" || c.OAuthClientSecret != "" {
		sources++
		switch {
		case c.OAuthClientID == "" || c.OAuthClientSecret == "":
			errs = append(errs, errors.New("TALLY_OAUTH_CLIENT_ID and TALLY_OAUTH_CLIENT_SECRET go together"))
		case c.OAuthTokenURL == "" && c.Issuer == "":
			errs = append(errs, errors.New("TALLY_OAUTH_CLIENT_ID needs TALLY_JWT_ISSUER (its discovery document names the token endpoint) or TALLY_OAUTH_TOKEN_URL"))
		}
	}
	switch {
	case sources > 1:
		errs = append(errs, errors.New("set only one of TALLY_SERVICE_TOKEN_FILE, TALLY_OAUTH_CLIENT_ID and TALLY_SERVICE_TOKEN"))
	case sources == 0 && c.JWKSURL != "" && c.JWTSecret == "" && needIdentity:
		errs = append(errs, errors.New("with TALLY_JWKS_URL the service needs its own identity: set TALLY_SERVICE_TOKEN_FILE, "+
			"TALLY_OAUTH_CLIENT_ID and TALLY_OAUTH_CLIENT_SECRET, or TALLY_SERVICE_TOKEN"))
	}
	return errors.Join(errs...)
}

// validateSecret checks TALLY_JWT_SECRET when it is set.
func (c AuthConfig) validateSecret() error {
	switch {
	case c.JWTSecret == "":
		return nil
	case len(c.JWTSecret) < auth.MinSecretLen:
		return fmt.Errorf("TALLY_JWT_SECRET must be at least %d bytes", auth.MinSecretLen)
	case c.JWTSecret == DevJWTSecret && !c.Development:
		return errors.New("TALLY_JWT_SECRET is the public development secret: set a secret of your own, or TALLY_ENV=development")
	}
	return nil
}

// validateJWKS checks TALLY_JWKS_URL and what it requires.
func (c AuthConfig) validateJWKS() error {
	var errs []error
	u, err := url.Parse(c.JWKSURL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		errs = append(errs, errors.New("TALLY_JWKS_URL is not an http(s) URL"))
	case u.Scheme != "https" && !c.Development:
		errs = append(errs, errors.New("TALLY_JWKS_URL must be https outside development"))
	}
	if !c.Development && (c.Issuer == "" || c.Audience == "") {
		errs = append(errs, errors.New("TALLY_JWT_ISSUER and TALLY_JWT_AUDIENCE are required with TALLY_JWKS_URL outside development"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with the defaults in place of zero durations (a Config built in code).
func (c AuthConfig) withDefaults() AuthConfig {
	if c.MaxLifetime == 0 {
		c.MaxLifetime = auth.DefaultMaxLifetime
	}
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = auth.DefaultJWKSRefresh
	}
	if c.JWKSMinRefetch == 0 {
		c.JWKSMinRefetch = auth.DefaultJWKSMinRefetch
	}
	return c
}

// verifyOptions are the token checks of c.
func (c AuthConfig) verifyOptions() []auth.Option {
	opts := []auth.Option{auth.WithMaxLifetime(c.MaxLifetime)}
	if c.Issuer != "" {
		opts = append(opts, auth.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, auth.WithAudience(c.Audience))
	}
	return opts
}

// Auth is a service's authentication: the verifier of its callers' tokens and its own identity
// toward the other services, and whether both are ready (see Config.Auth).
type Auth struct {
	service  string
	logger   *slog.Logger
	verifier auth.Verifier
	jwks     *auth.JWKSVerifier
	identity auth.TokenSource

	mu          sync.Mutex
	identityErr error
}

// NewAuth builds the authentication of service (its token subject is service:<service>) from
// cfg. With a JWKS the keys are fetched in the background until ctx is done: the service is not
// ready until they arrive. The service's own token is checked against its own verifier now and
// then again every few seconds; it is not ready while that check fails.
func NewAuth(ctx context.Context, cfg AuthConfig, service string, logger *slog.Logger) (*Auth, error) {
	if service == "" || logger == nil {
		return nil, errors.New("new auth: service and logger are required")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(false); err != nil {
		return nil, fmt.Errorf("new auth: %w", err)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: httpTimeout}
	}
	a := &Auth{service: service, logger: logger.With("component", "auth")}
	inner, err := a.buildVerifier(ctx, cfg, client)
	if err != nil {
		return nil, err
	}
	a.verifier = auth.NewCachingVerifier(inner, 0)

	src, err := cfg.identitySource(service, client)
	if err != nil {
		return nil, err
	}
	if src != nil {
		a.identity = src
		a.setIdentityErr(a.checkIdentity(ctx))
		go a.watchIdentity(ctx)
	}
	return a, nil
}

// buildVerifier returns the verifier of cfg: HS256 with the secret, the JWKS's keys, or both
// (dispatched on the token's alg). A JWKS verifier is kept in a.jwks for readiness and metrics.
func (a *Auth) buildVerifier(ctx context.Context, cfg AuthConfig, client *http.Client) (auth.Verifier, error) {
	var hs, jwks auth.Verifier
	if cfg.JWTSecret != "" {
		v, err := auth.NewHS256Verifier([]byte(cfg.JWTSecret), cfg.verifyOptions()...)
		if err != nil {
			return nil, fmt.Errorf("new auth: %w", err)
		}
		hs = v
	}
	if cfg.JWKSURL != "" {
		v, err := auth.NewJWKSVerifier(ctx, auth.JWKSConfig{
			URL: cfg.JWKSURL, Client: client, Refresh: cfg.JWKSRefresh, MinRefetch: cfg.JWKSMinRefetch, Logger: a.logger,
		}, cfg.verifyOptions()...)
		if err != nil {
			return nil, fmt.Errorf("new auth: %w", err)
		}
		a.jwks, jwks = v, v
	}
	switch {
	case hs == nil:
		return jwks, nil
	case jwks == nil:
		return hs, nil
	}
	v, err := auth.NewAlgVerifier(hs, jwks)
	if err != nil {
		return nil, fmt.Errorf("new auth: %w", err)
	}
	return v, nil
}

// identitySource returns the source of the service's own token, nil when none is configured
// (JWKS mode without one: a service calling no other needs none).
func (c AuthConfig) identitySource(service string, client *http.Client) (auth.TokenSource, error) {
	switch {
	case c.ServiceToken != "":
		return auth.NewStaticTokenSource(c.ServiceToken)
	case c.ServiceTokenFile != "":
		return auth.NewFileTokenSource(c.ServiceTokenFile), nil
	case c.OAuthClientID != "":
		return auth.NewClientCredentialsSource(auth.ClientCredentialsConfig{
			Issuer: c.Issuer, TokenURL: c.OAuthTokenURL, ClientID: c.OAuthClientID, ClientSecret: c.OAuthClientSecret,
			Scope: c.OAuthScope, Client: client,
		})
	case c.JWTSecret != "":
		return auth.NewMintingTokenSource([]byte(c.JWTSecret),
			auth.Claims{Subject: "service:" + service, Roles: []auth.Role{auth.RoleService}},
			min(serviceTokenTTL, c.MaxLifetime), c.verifyOptions()...)
	}
	return nil, nil
}

// Verifier returns the verifier of callers' tokens.
func (a *Auth) Verifier() auth.Verifier { return a.verifier }

// Identity returns the source of the service's own token for its outbound calls (see
// rpcclient.DialSource), nil when none is configured.
func (a *Auth) Identity() auth.TokenSource { return a.identity }

// Ready returns nil when the service can verify tokens and holds a valid identity, else why not.
func (a *Auth) Ready() error {
	var errs []error
	if a.jwks != nil {
		errs = append(errs, a.jwks.Ready())
	}
	a.mu.Lock()
	errs = append(errs, a.identityErr)
	a.mu.Unlock()
	return errors.Join(errs...)
}

// collectors returns the metrics of the authentication, for the server's registry. The JWKS
// failures are exported (at 0) without a JWKS too, so dashboards and alerts find the series on
// every service.
func (a *Auth) collectors() []prometheus.Collector {
	return []prometheus.Collector{prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "tally_auth_jwks_fetch_failures_total",
		Help:        "JWKS fetches that failed (the previous keys stay in use); 0 without a JWKS.",
		ConstLabels: prometheus.Labels{"service": a.service},
	}, func() float64 {
		if a.jwks == nil {
			return 0
		}
		return float64(a.jwks.FetchFailures())
	})}
}

// checkIdentity obtains the service's token and verifies it as any other service would.
func (a *Auth) checkIdentity(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, identityCheckTimeout)
	defer cancel()
	tok, err := a.identity.Token(ctx)
	if err != nil {
		return fmt.Errorf("service identity: %w", err)
	}
	c, err := a.verifier.Verify(ctx, tok)
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return fmt.Errorf("service identity: %w", err)
	case err != nil:
		return fmt.Errorf("service identity: the service's own token is refused: %w", err)
	case c.ServiceName() != a.service:
		return fmt.Errorf("service identity: the token is for %q with roles %v, not service:%s with the service role", c.Subject, c.Roles, a.service)
	}
	return nil
}

// watchIdentity checks the identity until ctx is done, often while it is not valid.
func (a *Auth) watchIdentity(ctx context.Context) {
	for {
		interval := identityCheckReady
		a.mu.Lock()
		if a.identityErr != nil {
			interval = identityCheckNotReady
		}
		a.mu.Unlock()
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		a.setIdentityErr(a.checkIdentity(ctx))
	}
}

// setIdentityErr records the outcome of a check, logging changes.
func (a *Auth) setIdentityErr(err error) {
	a.mu.Lock()
	prev := a.identityErr
	a.identityErr = err
	a.mu.Unlock()
	switch {
	case err != nil && (prev == nil || prev.Error() != err.Error()) && !errors.Is(err, auth.ErrUnavailable):
		a.logger.Warn("service identity is not valid: not ready", "service", a.service, "err", err)
	case err == nil && prev != nil:
		a.logger.Info("service identity is valid", "service", a.service)
	}
}
