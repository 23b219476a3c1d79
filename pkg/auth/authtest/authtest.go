// Package authtest is an OpenID Connect identity provider for tests: it publishes real RS256 and
// ES256 keys as a JWKS, a discovery document and an OAuth2 client credentials token endpoint, over
// HTTPS (httptest), and signs tokens with its keys.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
)

// Audience is the audience of the provider's tokens.
const Audience = "tally-test"

// Provider is a running identity provider.
type Provider struct {
	srv *httptest.Server
	// Issuer is the provider's issuer URL (its base URL).
	Issuer string

	mu        sync.Mutex
	keys      map[string]signingKey // published
	signing   string                // kid of the key new tokens are signed with
	clients   map[string]client
	down      bool
	tokenTTL  time.Duration
	jwksHits  atomic.Int64
	tokenHits atomic.Int64
}

// signingKey is a private key and its JWS method.
type signingKey struct {
	method jwt.SigningMethod
	key    crypto.Signer
}

// client is a registered OAuth2 client.
type client struct {
	secret  string
	subject string
}

// New starts a provider publishing one ES256 key ("es-1") and one RS256 key ("rs-1"); tokens
// are signed with es-1 and the token endpoint's tokens are valid for 10 minutes.
func New(t testing.TB) *Provider {
	t.Helper()
	p := &Provider{keys: map[string]signingKey{}, clients: map[string]client{}, tokenTTL: 10 * time.Minute}
	p.AddKey(t, "es-1", jwt.SigningMethodES256)
	p.AddKey(t, "rs-1", jwt.SigningMethodRS256)
	p.signing = "es-1"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("POST /oauth/token", p.token)
	p.srv = httptest.NewTLSServer(mux)
	p.Issuer = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// JWKSURL is where the provider publishes its keys.
func (p *Provider) JWKSURL() string { return p.Issuer + "/jwks" }

// Client returns an HTTP client trusting the provider's certificate.
func (p *Provider) Client() *http.Client { return p.srv.Client() }

// JWKSFetches returns how many times the JWKS was fetched.
func (p *Provider) JWKSFetches() int64 { return p.jwksHits.Load() }

// TokenRequests returns how many token requests the token endpoint answered.
func (p *Provider) TokenRequests() int64 { return p.tokenHits.Load() }

// SetDown makes every endpoint answer 503 (true) or work again (false).
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// AddKey generates and publishes a key for method (ES256 or RS256) under kid.
func (p *Provider) AddKey(t testing.TB, kid string, method jwt.SigningMethod) {
	t.Helper()
	var key crypto.Signer
	var err error
	switch method {
	case jwt.SigningMethodES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwt.SigningMethodRS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = fmt.Errorf("unsupported method %s", method.Alg())
	}
	require.NoError(t, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[kid] = signingKey{method: method, key: key}
}

// RemoveKey stops publishing kid.
func (p *Provider) RemoveKey(kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.keys, kid)
}

// SignWith makes the token endpoint and Token sign with kid.
func (p *Provider) SignWith(kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signing = kid
}

// AddClient registers an OAuth2 client whose tokens have subject service:<service> and the
// service role.
func (p *Provider) AddClient(id, secret, service string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[id] = client{secret: secret, subject: "service:" + service}
}

// SetTokenTTL sets the lifetime of the token endpoint's tokens.
func (p *Provider) SetTokenTTL(ttl time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenTTL = ttl
}

// Claims returns the claims of a valid token of the provider for c, valid for ttl.
func (p *Provider) Claims(c auth.Claims, ttl time.Duration) jwt.MapClaims {
	now := time.Now()
	m := jwt.MapClaims{
		"iss": p.Issuer, "aud": []string{Audience}, "sub": c.Subject,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
	}
	if c.OrgID != "" {
		m["org_id"] = c.OrgID
	}
	if c.Email != "" {
		m["email"] = c.Email
	}
	if c.Name != "" {
		m["name"] = c.Name
	}
	if len(c.Roles) > 0 {
		m["roles"] = c.Roles
	}
	return m
}

// Token returns a token for c valid for an hour, signed with the current signing key.
func (p *Provider) Token(t testing.TB, c auth.Claims) string {
	t.Helper()
	p.mu.Lock()
	kid := p.signing
	p.mu.Unlock()
	return p.Sign(t, kid, p.Claims(c, time.Hour))
}

// Sign returns claims signed with the key kid (published or not).
func (p *Provider) Sign(t testing.TB, kid string, claims jwt.MapClaims) string {
	t.Helper()
	p.mu.Lock()
	k, ok := p.keys[kid]
	p.mu.Unlock()
	require.True(t, ok, "authtest: no key %q", kid)
	tok, err := p.sign(kid, k, claims)
	require.NoError(t, err)
	return tok
}

// Key returns the private key kid (to forge with it after its removal).
func (p *Provider) Key(kid string) (jwt.SigningMethod, crypto.Signer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys[kid]
	return k.method, k.key
}

func (p *Provider) sign(kid string, k signingKey, claims jwt.MapClaims) (string, error) {
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = kid
	return tok.SignedString(k.key)
}

// unavailable answers 503 when the provider is down.
func (p *Provider) unavailable(w http.ResponseWriter) bool {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
	}
	return down
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	if p.unavailable(w) {
		return
	}
	writeJSON(w, map[string]any{
		"issuer": p.Issuer, "jwks_uri": p.JWKSURL(), "token_endpoint": p.Issuer + "/oauth/token",
		"grant_types_supported": []string{"client_credentials"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	p.jwksHits.Add(1)
	if p.unavailable(w) {
		return
	}
	p.mu.Lock()
	kids := make([]string, 0, len(p.keys))
	for kid := range p.keys {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	keys := make([]map[string]string, 0, len(kids))
	for _, kid := range kids {
		keys = append(keys, publicJWK(kid, p.keys[kid]))
	}
	p.mu.Unlock()
	writeJSON(w, map[string]any{"keys": keys})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.tokenHits.Add(1)
	if p.unavailable(w) {
		return
	}
	id, secret, _ := r.BasicAuth()
	p.mu.Lock()
	c, ok := p.clients[id]
	kid, ttl := p.signing, p.tokenTTL
	k := p.keys[kid]
	p.mu.Unlock()
	if !ok || c.secret != secret || r.PostFormValue("grant_type") != "client_credentials" {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]string{"error": "invalid_client"})
		return
	}
	tok, err := p.sign(kid, k, p.Claims(auth.Claims{Subject: c.subject, Roles: []auth.Role{auth.RoleService}}, ttl))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl / time.Second)})
}

// publicJWK returns the JWK of k's public key.
func publicJWK(kid string, k signingKey) map[string]string {
	enc := base64.RawURLEncoding.EncodeToString
	switch pub := k.key.Public().(type) {
	case *ecdsa.PublicKey:
		point, _ := pub.Bytes()
		return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256", "x": enc(point[1:33]), "y": enc(point[33:])}
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": enc(pub.N.Bytes()), "e": enc(big.NewInt(int64(pub.E)).Bytes())}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
