package auth

import (
	"context"
	"errors"
	"fmt"
)

// algVerifier sends each token to the verifier of its alg: HS256 to a shared-secret verifier,
// RS256 and ES256 to a JWKS verifier. Each verifier still accepts only its own algorithms, so a
// token cannot pick a key of the other kind (no HS256 "signed" with a public key).
type algVerifier struct {
	hs   Verifier
	jwks Verifier
}

// NewAlgVerifier returns a Verifier accepting both HS256 tokens (checked by hs, made with
// NewHS256Verifier) and RS256/ES256 tokens (checked by jwks, a JWKSVerifier): for a platform
// whose services keep signing their own tokens with TALLY_JWT_SECRET while people sign in with
// an identity provider (TALLY_JWKS_URL and TALLY_JWT_SECRET both set).
func NewAlgVerifier(hs, jwks Verifier) (Verifier, error) {
	if hs == nil || jwks == nil {
		return nil, errors.New("new alg verifier: both verifiers are required")
	}
	return &algVerifier{hs: hs, jwks: jwks}, nil
}

// Verify checks token with the verifier of its alg header.
func (v *algVerifier) Verify(ctx context.Context, token string) (Claims, error) {
	alg, err := tokenAlg(token)
	if err != nil {
		return Claims{}, fmt.Errorf("verify token: %w", err)
	}
	switch alg {
	case "HS256":
		return v.hs.Verify(ctx, token)
	case "RS256", "ES256":
		return v.jwks.Verify(ctx, token)
	}
	return Claims{}, fmt.Errorf("verify token: alg %s is not accepted", shortName(alg))
}

// keySetVersion follows the JWKS verifier's keys (see NewCachingVerifier).
func (v *algVerifier) keySetVersion() uint64 {
	if k, ok := v.jwks.(keySetVersioner); ok {
		return k.keySetVersion()
	}
	return 0
}

// tokenAlg reads the alg of raw's header (parsed as strictly as Verify does).
func tokenAlg(raw string) (string, error) {
	if err := checkHeader(raw); err != nil {
		return "", err
	}
	parts, _ := segments(raw)
	b, err := decodeSegment(parts[0])
	if err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	h, err := decodeObject(b)
	if err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	alg, _ := h["alg"].(string)
	return alg, nil
}
