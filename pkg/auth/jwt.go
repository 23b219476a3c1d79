package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the minimum length in bytes of an HS256 secret.
const MinSecretLen = 16

// Verifier checks a token's signature and standard claims and returns the caller's identity.
type Verifier interface {
	Verify(ctx context.Context, token string) (Claims, error)
}

// Option adjusts the checks a Verifier performs.
type Option func(*options)

// options collects the settings of a verifier.
type options struct {
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	// minRefetch limits how often a JWKS verifier refetches keys on an unknown kid.
	minRefetch time.Duration
}

// WithIssuer requires the iss claim to equal iss.
func WithIssuer(iss string) Option {
	return func(o *options) { o.issuer = iss }
}

// WithAudience requires the aud claim to contain aud.
func WithAudience(aud string) Option {
	return func(o *options) { o.audience = aud }
}

// WithLeeway tolerates clock skew of d when checking exp, nbf and iat.
func WithLeeway(d time.Duration) Option {
	return func(o *options) { o.leeway = d }
}

// WithClock makes the verifier read the time from now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithRefetchInterval sets the minimum time between two JWKS fetches triggered by an unknown kid
// (default 30s). It has no effect on an HS256 verifier.
func WithRefetchInterval(d time.Duration) Option {
	return func(o *options) { o.minRefetch = d }
}

// buildOptions applies opts over the defaults.
func buildOptions(opts []Option) options {
	o := options{now: time.Now, minRefetch: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// parser returns a JWT parser accepting only methods and enforcing the configured claims checks.
func (o options) parser(methods ...string) *jwt.Parser {
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.leeway),
		jwt.WithTimeFunc(o.now),
	}
	if o.issuer != "" {
		popts = append(popts, jwt.WithIssuer(o.issuer))
	}
	if o.audience != "" {
		popts = append(popts, jwt.WithAudience(o.audience))
	}
	return jwt.NewParser(popts...)
}

// tokenClaims is the JSON shape of a tally token.
type tokenClaims struct {
	jwt.RegisteredClaims
	OrgID string `json:"org_id,omitempty"`
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
	Roles []Role `json:"roles,omitempty"`
}

// claims converts the token claims to the caller's identity.
func (tc *tokenClaims) claims() (Claims, error) {
	if tc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: sub is empty", jwt.ErrTokenInvalidSubject)
	}
	c := Claims{
		Subject: tc.Subject,
		OrgID:   tc.OrgID,
		Email:   tc.Email,
		Name:    tc.Name,
		Roles:   tc.Roles,
	}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.Time
	}
	return c, nil
}

// parse verifies raw with p, resolving keys with keyFunc.
func parse(p *jwt.Parser, raw string, keyFunc jwt.Keyfunc) (Claims, error) {
	var tc tokenClaims
	if _, err := p.ParseWithClaims(raw, &tc, keyFunc); err != nil {
		return Claims{}, fmt.Errorf("verify token: %w", err)
	}
	c, err := tc.claims()
	if err != nil {
		return Claims{}, fmt.Errorf("verify token: %w", err)
	}
	return c, nil
}

// hs256Verifier verifies tokens signed with a shared secret.
type hs256Verifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewHS256Verifier returns a Verifier for HS256 tokens signed with secret (development and
// service-to-service). Secrets shorter than MinSecretLen bytes are rejected.
func NewHS256Verifier(secret []byte, opts ...Option) (Verifier, error) {
	if err := checkSecret(secret); err != nil {
		return nil, fmt.Errorf("new HS256 verifier: %w", err)
	}
	o := buildOptions(opts)
	return &hs256Verifier{
		secret: append([]byte(nil), secret...),
		parser: o.parser(jwt.SigningMethodHS256.Alg()),
	}, nil
}

// Verify checks token's HS256 signature and its exp, nbf and iat claims.
func (v *hs256Verifier) Verify(_ context.Context, token string) (Claims, error) {
	return parse(v.parser, token, func(*jwt.Token) (any, error) { return v.secret, nil })
}

// errShortSecret reports an HS256 secret below MinSecretLen.
var errShortSecret = errors.New("secret must be at least 16 bytes")

// checkSecret rejects secrets too short to be safe.
func checkSecret(secret []byte) error {
	if len(secret) < MinSecretLen {
		return errShortSecret
	}
	return nil
}

// Mint returns an HS256 token for c signed with secret and valid for ttl from now.
func Mint(secret []byte, c Claims, ttl time.Duration) (string, error) {
	if err := checkSecret(secret); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint token: ttl must be positive, got %s", ttl)
	}
	if c.Subject == "" {
		return "", errors.New("mint token: subject is required")
	}
	now := time.Now()
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		OrgID: c.OrgID,
		Email: c.Email,
		Name:  c.Name,
		Roles: c.Roles,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}
