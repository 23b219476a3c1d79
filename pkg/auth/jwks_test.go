package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/testenv"
)

// jwksServer serves a replaceable JWKS document (or a failure status) and counts fetches.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	keys   []map[string]string
	status int
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			http.Error(w, "down", s.status)
			return
		}
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
	s.status = http.StatusOK
}

// fail makes the server answer status.
func (s *jwksServer) fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
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

// newJWKS returns a verifier of srv, ready (its first fetch done) unless the server fails.
func newJWKS(t *testing.T, srv *jwksServer, cfg auth.JWKSConfig, opts ...auth.Option) *auth.JWKSVerifier {
	t.Helper()
	cfg.URL, cfg.Client = srv.URL, srv.Client()
	v, err := auth.NewJWKSVerifier(t.Context(), cfg, opts...)
	require.NoError(t, err)
	return v
}

// waitReady waits until v has keys.
func waitReady(t *testing.T, v *auth.JWKSVerifier) {
	t.Helper()
	require.Eventually(t, func() bool { return v.Ready() == nil }, 10*time.Second, 5*time.Millisecond, "JWKS verifier never got keys")
}

func TestJWKSVerifier(t *testing.T) {
	rsaKey, ecKey, otherEC := newRSAKey(t), newECKey(t), newECKey(t)
	srv := newJWKSServer(t,
		rsaJWK("rsa-1", &rsaKey.PublicKey),
		ecJWK(t, "ec-1", &ecKey.PublicKey),
		map[string]string{"kty": "oct", "kid": "hmac", "k": b64([]byte("0123456789abcdef"))},
		map[string]string{"kty": "EC", "kid": "bad-ec", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))},
	)
	v := newJWKS(t, srv, auth.JWKSConfig{Refresh: time.Hour, MinRefetch: 20 * time.Millisecond})
	waitReady(t, v)

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
		{name: "case-folded claim", token: signed(t, jwt.SigningMethodES256, ecKey, "ec-1", withClaims(map[string]any{"Roles": []string{"ops"}})), wantErr: "case-sensitive"},
		{name: "lifetime above the maximum", token: signed(t, jwt.SigningMethodES256, ecKey, "ec-1", withClaims(map[string]any{"exp": time.Now().Add(48 * time.Hour).Unix()})), wantErr: "maximum lifetime"},
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

func TestJWKSVerifierIssuerAndAudience(t *testing.T) {
	key := newECKey(t)
	srv := newJWKSServer(t, ecJWK(t, "ec-1", &key.PublicKey))
	v := newJWKS(t, srv, auth.JWKSConfig{}, auth.WithIssuer("https://id.tally.test"), auth.WithAudience("tally"))
	waitReady(t, v)
	tests := []struct {
		name    string
		set     map[string]any
		wantErr string
	}{
		{name: "matching", set: map[string]any{"iss": "https://id.tally.test", "aud": []string{"other", "tally"}}},
		{name: "no issuer", set: map[string]any{"aud": "tally"}, wantErr: "iss claim is required"},
		{name: "another issuer", set: map[string]any{"iss": "https://evil.test", "aud": "tally"}, wantErr: "invalid issuer"},
		{name: "no audience", set: map[string]any{"iss": "https://id.tally.test"}, wantErr: "aud claim is required"},
		{name: "another audience", set: map[string]any{"iss": "https://id.tally.test", "aud": "billing"}, wantErr: "invalid audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), signed(t, jwt.SigningMethodES256, key, "ec-1", withClaims(tt.set)))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

// TestJWKSVerifierStartsWithoutKeys: a JWKS unreachable at start leaves the verifier not ready
// (ErrUnavailable, failures logged at warn and counted) until the keys arrive.
func TestJWKSVerifierStartsWithoutKeys(t *testing.T) {
	key := newECKey(t)
	srv := newJWKSServer(t, ecJWK(t, "ec-1", &key.PublicKey))
	srv.fail(http.StatusServiceUnavailable)
	var logs testenv.Buffer
	v := newJWKS(t, srv, auth.JWKSConfig{MinRefetch: 10 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	token := signed(t, jwt.SigningMethodES256, key, "ec-1", standardClaims(0))

	require.Eventually(t, func() bool { return v.FetchFailures() >= 2 }, 10*time.Second, 5*time.Millisecond, "failed fetches are retried and counted")
	require.ErrorIs(t, v.Ready(), auth.ErrUnavailable)
	require.ErrorContains(t, v.Ready(), "503")
	_, err := v.Verify(t.Context(), token)
	require.ErrorIs(t, err, auth.ErrUnavailable)
	require.Contains(t, logs.String(), `"level":"WARN","msg":"fetching the JWKS failed, keeping the previous keys"`)
	conn := startServer(t, v, testPolicy())
	err = conn.Invoke(auth.OutgoingContext(t.Context(), token), mMembers, &orgReq{}, &echo{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Equal(t, "tokens cannot be verified yet, retry later", status.Convert(err).Message(), "no JWKS URL, no status, no dial error")

	srv.serve(ecJWK(t, "ec-1", &key.PublicKey))
	waitReady(t, v)
	_, err = v.Verify(t.Context(), token)
	require.NoError(t, err)

	// Once keys are known, a failing JWKS keeps them.
	srv.fail(http.StatusInternalServerError)
	failures := v.FetchFailures()
	_, err = v.Verify(t.Context(), signed(t, jwt.SigningMethodES256, key, "made-up", standardClaims(0)))
	require.ErrorContains(t, err, "unknown kid")
	require.Greater(t, v.FetchFailures(), failures)
	require.NoError(t, v.Ready())
	_, err = v.Verify(t.Context(), token)
	require.NoError(t, err)
}

func TestJWKSVerifierNotReadyReasons(t *testing.T) {
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	tests := []struct {
		name    string
		keys    []map[string]string
		wantErr string
	}{
		{name: "only unusable keys", keys: []map[string]string{rsaJWK("small", &smallRSA.PublicKey)}, wantErr: "below 2048"},
		{name: "no keys", wantErr: "no usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, tt.keys...)
			v := newJWKS(t, srv, auth.JWKSConfig{})
			require.Eventually(t, func() bool { return v.FetchFailures() > 0 }, 10*time.Second, 5*time.Millisecond)
			require.ErrorContains(t, v.Ready(), tt.wantErr)
		})
	}
	_, err = auth.NewJWKSVerifier(t.Context(), auth.JWKSConfig{})
	require.ErrorContains(t, err, "url is required")
}

// TestJWKSVerifierNewKeyWithoutBlindWindow: a key published right after a fetch is accepted on the
// first try — the request waits for the next fetch instead of being refused.
func TestJWKSVerifierNewKeyWithoutBlindWindow(t *testing.T) {
	oldKey, newKey := newRSAKey(t), newECKey(t)
	srv := newJWKSServer(t, rsaJWK("rsa-1", &oldKey.PublicKey))
	v := newJWKS(t, srv, auth.JWKSConfig{Refresh: time.Hour, MinRefetch: 200 * time.Millisecond})
	waitReady(t, v)
	require.EqualValues(t, 1, srv.hits.Load())

	srv.serve(rsaJWK("rsa-1", &oldKey.PublicKey), ecJWK(t, "ec-2", &newKey.PublicKey))
	_, err := v.Verify(t.Context(), signed(t, jwt.SigningMethodES256, newKey, "ec-2", standardClaims(0)))
	require.NoError(t, err)
	require.EqualValues(t, 2, srv.hits.Load())

	_, err = v.Verify(t.Context(), signed(t, jwt.SigningMethodES256, newKey, "ec-2", standardClaims(0)))
	require.NoError(t, err)
	require.EqualValues(t, 2, srv.hits.Load(), "a known key needs no fetch")
}

// TestJWKSVerifierMadeUpKidsCannotForceFetches: concurrent requests naming made-up kids share
// fetches, and never cause more than one per MinRefetch.
func TestJWKSVerifierMadeUpKidsCannotForceFetches(t *testing.T) {
	key := newECKey(t)
	srv := newJWKSServer(t, ecJWK(t, "ec-1", &key.PublicKey))
	const minRefetch = 100 * time.Millisecond
	v := newJWKS(t, srv, auth.JWKSConfig{Refresh: time.Hour, MinRefetch: minRefetch})
	waitReady(t, v)

	start := time.Now()
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			tok := signed(t, jwt.SigningMethodES256, key, fmt.Sprintf("made-up-%d", i), standardClaims(0))
			if _, err := v.Verify(t.Context(), tok); err != nil {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	require.EqualValues(t, 200, refused.Load())
	fetches := srv.hits.Load() - 1
	require.GreaterOrEqual(t, fetches, int64(1), "an unknown kid is looked up in a fresh fetch")
	require.LessOrEqual(t, fetches, int64(elapsed/minRefetch)+1, "200 made-up kids in %s caused %d fetches", elapsed, fetches)
}

// TestJWKSVerifierRemovedKeyRefused: a key removed from the JWKS stops being accepted within the
// refresh interval, also for tokens the caching verifier has already seen; tokens of the keys
// that remain keep working.
func TestJWKSVerifierRemovedKeyRefused(t *testing.T) {
	kept, removed := newECKey(t), newRSAKey(t)
	srv := newJWKSServer(t, ecJWK(t, "kept", &kept.PublicKey), rsaJWK("removed", &removed.PublicKey))
	jwks := newJWKS(t, srv, auth.JWKSConfig{Refresh: 50 * time.Millisecond, MinRefetch: 10 * time.Millisecond})
	waitReady(t, jwks)
	v := auth.NewCachingVerifier(jwks, 0)
	keptTok := signed(t, jwt.SigningMethodES256, kept, "kept", standardClaims(0))
	removedTok := signed(t, jwt.SigningMethodRS256, removed, "removed", standardClaims(0))
	for _, tok := range []string{keptTok, removedTok} {
		_, err := v.Verify(t.Context(), tok)
		require.NoError(t, err)
	}

	srv.serve(ecJWK(t, "kept", &kept.PublicKey))
	require.Eventually(t, func() bool {
		_, err := v.Verify(t.Context(), removedTok)
		return err != nil
	}, 10*time.Second, 10*time.Millisecond, "a cached token of a removed key is refused after the next refresh")
	_, err := v.Verify(t.Context(), removedTok)
	require.ErrorContains(t, err, `unknown kid "removed"`)
	_, err = v.Verify(t.Context(), keptTok)
	require.NoError(t, err)
}

func TestJWKSVerifierPeriodicRefresh(t *testing.T) {
	oldKey, newKey := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, ecJWK(t, "ec-1", &oldKey.PublicKey))
	v := newJWKS(t, srv, auth.JWKSConfig{Refresh: 10 * time.Millisecond, MinRefetch: 5 * time.Millisecond})
	waitReady(t, v)

	srv.serve(ecJWK(t, "ec-2", &newKey.PublicKey))
	token := signed(t, jwt.SigningMethodES256, newKey, "ec-2", standardClaims(0))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		_, err := v.Verify(ctx, token)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
}
