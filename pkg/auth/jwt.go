package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the minimum length in bytes of an HS256 secret: the size of the hash output,
// as RFC 7518 section 3.2 requires.
const MinSecretLen = 32

// DefaultMaxLifetime is the longest a token may be valid (exp − iat) unless WithMaxLifetime says.
const DefaultMaxLifetime = 24 * time.Hour

// ErrUnavailable reports that tokens cannot be verified right now (the JWKS keys have not arrived
// yet): the caller should retry, its token may well be valid.
var ErrUnavailable = errors.New("token verification is not available yet")

// Verifier checks a token's signature and claims and returns the caller's identity.
type Verifier interface {
	Verify(ctx context.Context, token string) (Claims, error)
}

// Option adjusts the checks a Verifier performs, or the claims Mint writes.
type Option func(*options)

// options collects the settings of a verifier.
type options struct {
	issuer      string
	audience    string
	leeway      time.Duration
	maxLifetime time.Duration
	now         func() time.Time
}

// WithIssuer requires the iss claim to equal iss (Mint: writes it).
func WithIssuer(iss string) Option {
	return func(o *options) { o.issuer = iss }
}

// WithAudience requires the aud claim to contain aud (Mint: writes it).
func WithAudience(aud string) Option {
	return func(o *options) { o.audience = aud }
}

// WithLeeway tolerates clock skew of d when checking exp, nbf and iat.
func WithLeeway(d time.Duration) Option {
	return func(o *options) { o.leeway = d }
}

// WithMaxLifetime refuses tokens valid for longer than d: exp − iat, or exp − now when the token
// has no iat (default DefaultMaxLifetime). Mint refuses a longer ttl.
func WithMaxLifetime(d time.Duration) Option {
	return func(o *options) { o.maxLifetime = d }
}

// WithClock makes the verifier read the time from now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// buildOptions applies opts over the defaults.
func buildOptions(opts []Option) options {
	o := options{now: time.Now, maxLifetime: DefaultMaxLifetime}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.maxLifetime <= 0 {
		o.maxLifetime = DefaultMaxLifetime
	}
	return o
}

// parser returns a JWT parser accepting only methods and enforcing the configured claims checks.
func (o options) parser(methods ...string) *jwt.Parser {
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
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

// verify checks raw with p, resolving keys with keyFunc: the header and claims are parsed
// strictly (see tokenClaims.UnmarshalJSON), then the signature, exp, nbf, iat, iss and aud
// are checked, then the subject and the lifetime. Errors are for logs, not for callers.
func (o options) verify(p *jwt.Parser, raw string, keyFunc jwt.Keyfunc) (Claims, error) {
	if err := checkHeader(raw); err != nil {
		return Claims{}, fmt.Errorf("verify token: %w", err)
	}
	var tc tokenClaims
	if _, err := p.ParseWithClaims(raw, &tc, keyFunc); err != nil {
		return Claims{}, fmt.Errorf("verify token: %w", err)
	}
	if tc.Subject == "" {
		return Claims{}, errors.New("verify token: sub is empty")
	}
	start := o.now()
	if tc.IssuedAt != nil {
		start = tc.IssuedAt.Time
	}
	if life := tc.ExpiresAt.Sub(start); life > o.maxLifetime {
		return Claims{}, fmt.Errorf("verify token: valid for %s, longer than the maximum lifetime %s", life.Round(time.Second), o.maxLifetime)
	}
	return tc.claims(), nil
}

// claims converts verified token claims to the caller's identity.
func (tc *tokenClaims) claims() Claims {
	c := Claims{Subject: tc.Subject, OrgID: tc.OrgID, Email: tc.Email, Name: tc.Name, Roles: tc.Roles}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.Time
	}
	return c
}

// hs256Verifier verifies tokens signed with a shared secret.
type hs256Verifier struct {
	secret []byte
	opts   options
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
		opts:   o,
		parser: o.parser(jwt.SigningMethodHS256.Alg()),
	}, nil
}

// Verify checks token's HS256 signature and its claims.
func (v *hs256Verifier) Verify(_ context.Context, token string) (Claims, error) {
	return v.opts.verify(v.parser, token, func(*jwt.Token) (any, error) { return v.secret, nil })
}

// checkSecret rejects secrets too short to be safe.
func checkSecret(secret []byte) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("secret must be at least %d bytes", MinSecretLen)
	}
	return nil
}

// mintedClaims is the JSON a minted token carries.
type mintedClaims struct {
	jwt.RegisteredClaims
	OrgID string `json:"org_id,omitempty"`
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
	Roles []Role `json:"roles,omitempty"`
}

// Mint returns an HS256 token for c signed with secret and valid for ttl from now, which must
// not exceed the maximum lifetime (WithMaxLifetime, default DefaultMaxLifetime). WithIssuer and
// WithAudience write iss and aud; WithClock sets now.
func Mint(secret []byte, c Claims, ttl time.Duration, opts ...Option) (string, error) {
	if err := checkSecret(secret); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	o := buildOptions(opts)
	if ttl <= 0 {
		return "", fmt.Errorf("mint token: ttl must be positive, got %s", ttl)
	}
	if ttl > o.maxLifetime {
		return "", fmt.Errorf("mint token: ttl %s exceeds the maximum token lifetime %s", ttl, o.maxLifetime)
	}
	if c.Subject == "" {
		return "", errors.New("mint token: subject is required")
	}
	now := o.now()
	mc := mintedClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    o.issuer,
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
	if o.audience != "" {
		mc.Audience = jwt.ClaimStrings{o.audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, mc).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}
