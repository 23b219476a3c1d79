package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Limits applied to JWKS documents.
const (
	maxJWKSBytes      = 1 << 20
	minRSABits        = 2048
	defaultJWKSPeriod = time.Hour
)

// jwksVerifier verifies RS256 and ES256 tokens against keys published as a JWKS document.
type jwksVerifier struct {
	url        string
	client     *http.Client
	parser     *jwt.Parser
	now        func() time.Time
	minRefetch time.Duration

	// fetchMu serializes fetches; mu guards keys and lastFetch.
	fetchMu   sync.Mutex
	mu        sync.RWMutex
	keys      map[string]any
	lastFetch time.Time
}

// NewJWKSVerifier returns a Verifier for RS256 and ES256 tokens whose kid names a key in the JWKS
// document at url. The document is fetched once before returning, then every refresh (default 1h
// when refresh <= 0) until ctx is done, and again when a token names an unknown kid, at most once
// per WithRefetchInterval. A nil client means http.DefaultClient.
func NewJWKSVerifier(ctx context.Context, url string, client *http.Client, refresh time.Duration, opts ...Option) (Verifier, error) {
	if url == "" {
		return nil, errors.New("new JWKS verifier: url is required")
	}
	if client == nil {
		client = http.DefaultClient
	}
	if refresh <= 0 {
		refresh = defaultJWKSPeriod
	}
	o := buildOptions(opts)
	v := &jwksVerifier{
		url:        url,
		client:     client,
		parser:     o.parser(jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()),
		now:        o.now,
		minRefetch: o.minRefetch,
	}
	if err := v.refetch(ctx); err != nil {
		return nil, fmt.Errorf("new JWKS verifier: %w", err)
	}
	go v.refreshLoop(ctx, refresh)
	return v, nil
}

// refreshLoop refetches the keys every period until ctx is done; failures keep the old keys.
func (v *jwksVerifier) refreshLoop(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = v.refetch(ctx) // Keep serving the previous keys; the next tick or unknown kid retries.
		}
	}
}

// Verify checks token's signature with the key named by its kid header and its standard claims.
func (v *jwksVerifier) Verify(ctx context.Context, token string) (Claims, error) {
	return parse(v.parser, token, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid header")
		}
		key, err := v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if err := checkKeyMethod(key, t.Method); err != nil {
			return nil, fmt.Errorf("key %q: %w", kid, err)
		}
		return key, nil
	})
}

// checkKeyMethod rejects a token whose alg does not match the type of its key.
func checkKeyMethod(key any, m jwt.SigningMethod) error {
	switch key.(type) {
	case *rsa.PublicKey:
		if m.Alg() == jwt.SigningMethodRS256.Alg() {
			return nil
		}
	case *ecdsa.PublicKey:
		if m.Alg() == jwt.SigningMethodES256.Alg() {
			return nil
		}
	}
	return fmt.Errorf("alg %s does not match key type %T", m.Alg(), key)
}

// key returns the key named kid, refetching the JWKS once if it is unknown and the rate limit allows.
func (v *jwksVerifier) key(ctx context.Context, kid string) (any, error) {
	if k, ok := v.lookup(kid); ok {
		return k, nil
	}
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	// Another caller may have fetched while we waited.
	if k, ok := v.lookup(kid); ok {
		return k, nil
	}
	v.mu.RLock()
	recent := v.now().Sub(v.lastFetch) < v.minRefetch
	v.mu.RUnlock()
	if recent {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	if err := v.fetchLocked(ctx); err != nil {
		return nil, fmt.Errorf("unknown kid %q: %w", kid, err)
	}
	if k, ok := v.lookup(kid); ok {
		return k, nil
	}
	return nil, fmt.Errorf("unknown kid %q", kid)
}

// lookup returns the cached key named kid.
func (v *jwksVerifier) lookup(kid string) (any, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	k, ok := v.keys[kid]
	return k, ok
}

// refetch fetches the JWKS document and replaces the cached keys.
func (v *jwksVerifier) refetch(ctx context.Context) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	return v.fetchLocked(ctx)
}

// fetchLocked fetches the JWKS document; the caller holds fetchMu. Failures count for the rate limit.
func (v *jwksVerifier) fetchLocked(ctx context.Context) error {
	keys, err := v.fetch(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastFetch = v.now()
	if err != nil {
		return err
	}
	v.keys = keys
	return nil
}

// fetch downloads and parses the JWKS document.
func (v *jwksVerifier) fetch(ctx context.Context) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS %s: status %s", v.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", v.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch JWKS %s: document exceeds %d bytes", v.url, maxJWKSBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", v.url, err)
	}
	return keys, nil
}

// jwk is one JSON Web Key; only the fields used for RSA and EC P-256 signature keys are kept.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS returns the usable signature keys of a JWKS document by kid. Keys without a kid, for
// encryption, of unsupported types or malformed are skipped, so one bad key cannot lock everyone
// out; a document without any usable key is an error.
func parseJWKS(body []byte) (map[string]any, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := make(map[string]any, len(doc.Keys))
	var bad []error
	for _, k := range doc.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		var (
			key any
			err error
		)
		switch k.Kty {
		case "RSA":
			key, err = k.rsaKey()
		case "EC":
			key, err = k.ecKey()
		default:
			continue
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("key %q: %w", k.Kid, err))
			continue
		}
		keys[k.Kid] = key
	}
	if len(keys) == 0 {
		if len(bad) == 0 {
			return nil, errors.New("no usable RS256 or ES256 keys")
		}
		return nil, fmt.Errorf("no usable RS256 or ES256 keys: %w", errors.Join(bad...))
	}
	return keys, nil
}

// rsaKey decodes an RSA public key usable with RS256.
func (k jwk) rsaKey() (*rsa.PublicKey, error) {
	if k.Alg != "" && k.Alg != jwt.SigningMethodRS256.Alg() {
		return nil, fmt.Errorf("unsupported RSA alg %q", k.Alg)
	}
	n, err := decodeB64(k.N)
	if err != nil {
		return nil, fmt.Errorf("decode n: %w", err)
	}
	e, err := decodeB64(k.E)
	if err != nil {
		return nil, fmt.Errorf("decode e: %w", err)
	}
	mod := new(big.Int).SetBytes(n)
	if mod.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits is below %d", mod.BitLen(), minRSABits)
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
		return nil, errors.New("invalid RSA exponent")
	}
	return &rsa.PublicKey{N: mod, E: int(exp.Int64())}, nil
}

// ecKey decodes an EC P-256 public key usable with ES256.
func (k jwk) ecKey() (*ecdsa.PublicKey, error) {
	if k.Crv != "P-256" {
		return nil, fmt.Errorf("unsupported curve %q", k.Crv)
	}
	if k.Alg != "" && k.Alg != jwt.SigningMethodES256.Alg() {
		return nil, fmt.Errorf("unsupported EC alg %q", k.Alg)
	}
	x, err := decodeB64(k.X)
	if err != nil {
		return nil, fmt.Errorf("decode x: %w", err)
	}
	y, err := decodeB64(k.Y)
	if err != nil {
		return nil, fmt.Errorf("decode y: %w", err)
	}
	const size = 32
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("P-256 coordinates must be %d bytes", size)
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("parse P-256 point: %w", err)
	}
	return pub, nil
}

// decodeB64 decodes base64url with or without padding.
func decodeB64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty value")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
