package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
)

// DevJWTSecret is the development signing secret used when TALLY_JWT_SECRET is unset.
const DevJWTSecret = "tally-dev-secret-change-me"

// AuthConfig selects how bearer tokens are verified.
type AuthConfig struct {
	// JWKSURL selects RS256/ES256 verification against a JWKS (production).
	JWKSURL string
	// JWTSecret selects HS256 verification (development) and signs service-to-service tokens.
	JWTSecret string
}

// LoadAuthConfig reads TALLY_JWKS_URL and TALLY_JWT_SECRET.
func LoadAuthConfig(e *config.Env) AuthConfig {
	return AuthConfig{JWKSURL: e.String("TALLY_JWKS_URL", ""), JWTSecret: e.String("TALLY_JWT_SECRET", DevJWTSecret)}
}

// NewVerifier returns the JWKS verifier when a JWKS URL is configured, else the HS256 one,
// remembering verified tokens until their exp (see auth.NewCachingVerifier).
func NewVerifier(ctx context.Context, cfg AuthConfig) (auth.Verifier, error) {
	var v auth.Verifier
	var err error
	switch {
	case cfg.JWKSURL != "":
		v, err = auth.NewJWKSVerifier(ctx, cfg.JWKSURL, &http.Client{Timeout: 10 * time.Second}, time.Hour)
	case cfg.JWTSecret == "":
		return nil, errors.New("TALLY_JWT_SECRET or TALLY_JWKS_URL is required")
	default:
		v, err = auth.NewHS256Verifier([]byte(cfg.JWTSecret))
	}
	if err != nil {
		return nil, err
	}
	return auth.NewCachingVerifier(v, 0), nil
}

// ServiceToken mints the token a service presents to the others (sub "service:<name>", role
// service). With a JWKS in production, set TALLY_SERVICE_TOKEN to a token issued by the identity
// provider instead.
func ServiceToken(e *config.Env, cfg AuthConfig, name string) (string, error) {
	if tok := e.String("TALLY_SERVICE_TOKEN", ""); tok != "" {
		return tok, nil
	}
	return auth.Mint([]byte(cfg.JWTSecret), auth.Claims{Subject: "service:" + name, Roles: []auth.Role{auth.RoleService}}, 10*365*24*time.Hour)
}
