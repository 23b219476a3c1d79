package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
)

// jwksServer serves a replaceable JWKS document and counts fetches.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	keys []map[string]string
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the published keys.
func (s *jwksServer) serve(keys ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
	}
}

func ecJWK(t *testing.T, kid string, k *ecdsa.PublicKey) map[string]string {
	t.Helper()
	point, err := k.Bytes() // 0x04 || X || Y
	require.NoError(t, err)
	return map[string]string{
		"kty": "EC", "kid": kid, "crv": "P-256",
		"x": b64(point[1:33]), "y": b64(point[33:]),
	}
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func TestJWKSVerifier(t *testing.T) {
	rsaKey, ecKey, otherEC := newRSAKey(t), newECKey(t), newECKey(t)
	srv := newJWKSServer(t,
		rsaJWK("rsa-1", &rsaKey.PublicKey),
		ecJWK(t, "ec-1", &ecKey.PublicKey),
		map[string]string{"kty": "oct", "kid": "hmac", "k": b64([]byte("0123456789abcdef"))},
		map[string]string{"kty": "EC", "kid": "bad-ec", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))},
	)
	v, err := auth.NewJWKSVerifier(t.Context(), srv.URL, srv.Client(), time.Hour)
	require.NoError(t, err)

	rsaDER := x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)
	tests := []struct {
		name    string
		token   string
		wantErr string
	}{
		{name: "RS256", token: signed(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", standardClaims(0))},
		{name: "ES256", token: signed(t, jwt.SigningMethodES256, ecKey, "ec-1", standardClaims(0))},
		{name: "expired", token: signed(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", standardClaims(-2*time.Hour)), wantErr: "expired"},
		{name: "wrong key for kid", token: signed(t, jwt.SigningMethodES256, otherEC, "ec-1", standardClaims(0)), wantErr: "signature is invalid"},
		{name: "alg does not match key type", token: signed(t, jwt.SigningMethodES256, ecKey, "rsa-1", standardClaims(0)), wantErr: "does not match key type"},
		{name: "HS256 with public key as secret", token: signed(t, jwt.SigningMethodHS256, rsaDER, "rsa-1", standardClaims(0)), wantErr: "signing method HS256 is invalid"},
		{name: "HS256 with oct key", token: signed(t, jwt.SigningMethodHS256, []byte("0123456789abcdef"), "hmac", standardClaims(0)), wantErr: "signing method HS256 is invalid"},
		{name: "alg none", token: signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", standardClaims(0)), wantErr: "signing method none is invalid"},
		{name: "no kid", token: signed(t, jwt.SigningMethodRS256, rsaKey, "", standardClaims(0)), wantErr: "no kid"},
		{name: "invalid EC point skipped", token: signed(t, jwt.SigningMethodES256, ecKey, "bad-ec", standardClaims(0)), wantErr: `unknown kid "bad-ec"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "user-1", got.Subject)
			require.Equal(t, "acme", got.OrgID)
			require.Equal(t, []auth.Role{auth.RoleMember, auth.RoleAdmin}, got.Roles)
		})
	}
}

func TestJWKSVerifierRotationRefetchesWithRateLimit(t *testing.T) {
	oldKey, newKey := newRSAKey(t), newECKey(t)
	srv := newJWKSServer(t, rsaJWK("rsa-1", &oldKey.PublicKey))
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	v, err := auth.NewJWKSVerifier(t.Context(), srv.URL, srv.Client(), time.Hour,
		auth.WithClock(clock), auth.WithRefetchInterval(30*time.Second))
	require.NoError(t, err)
	require.EqualValues(t, 1, srv.hits.Load())

	oldToken := signed(t, jwt.SigningMethodRS256, oldKey, "rsa-1", standardClaims(0))
	newToken := signed(t, jwt.SigningMethodES256, newKey, "ec-2", standardClaims(0))
	_, err = v.Verify(t.Context(), oldToken)
	require.NoError(t, err)

	srv.serve(ecJWK(t, "ec-2", &newKey.PublicKey))

	steps := []struct {
		name     string
		advance  time.Duration
		token    string
		wantErr  string
		wantHits int64
	}{
		{name: "unknown kid right after a fetch is rate limited", token: newToken, wantErr: `unknown kid "ec-2"`, wantHits: 1},
		{name: "unknown kid after the interval refetches", advance: 31 * time.Second, token: newToken, wantHits: 2},
		{name: "cached key needs no fetch", token: newToken, wantHits: 2},
		{name: "retired key is rejected without hammering", token: oldToken, wantErr: `unknown kid "rsa-1"`, wantHits: 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			skew.Add(int64(st.advance))
			_, err := v.Verify(t.Context(), st.token)
			if st.wantErr != "" {
				require.ErrorContains(t, err, st.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, st.wantHits, srv.hits.Load())
		})
	}
}

func TestJWKSVerifierPeriodicRefresh(t *testing.T) {
	oldKey, newKey := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, ecJWK(t, "ec-1", &oldKey.PublicKey))
	v, err := auth.NewJWKSVerifier(t.Context(), srv.URL, srv.Client(), 10*time.Millisecond,
		auth.WithRefetchInterval(time.Hour))
	require.NoError(t, err)

	srv.serve(ecJWK(t, "ec-2", &newKey.PublicKey))
	token := signed(t, jwt.SigningMethodES256, newKey, "ec-2", standardClaims(0))
	require.Eventually(t, func() bool {
		_, err := v.Verify(t.Context(), token)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
}

func TestNewJWKSVerifierErrors(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	onlyBad := newJWKSServer(t, rsaJWK("small", &smallRSA.PublicKey))
	empty := newJWKSServer(t)

	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{name: "no url", wantErr: "url is required"},
		{name: "server error", url: failing.URL, wantErr: "500"},
		{name: "only unusable keys", url: onlyBad.URL, wantErr: "below 2048"},
		{name: "no keys", url: empty.URL, wantErr: "no usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewJWKSVerifier(t.Context(), tt.url, nil, time.Hour)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
