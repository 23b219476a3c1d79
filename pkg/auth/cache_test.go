package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// countingVerifier counts the verifications that reach it.
type countingVerifier struct {
	inner Verifier
	calls int
}

func (c *countingVerifier) Verify(ctx context.Context, tok string) (Claims, error) {
	c.calls++
	return c.inner.Verify(ctx, tok)
}

func TestCachingVerifier(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	inner, err := NewHS256Verifier(secret)
	require.NoError(t, err)
	counting := &countingVerifier{inner: inner}
	v := NewCachingVerifier(counting, 2).(*cachingVerifier)
	now := time.Now()
	v.now = func() time.Time { return now }

	tok, err := Mint(secret, Claims{Subject: "backend", Roles: []Role{RoleService}}, time.Minute)
	require.NoError(t, err)
	for range 3 {
		c, err := v.Verify(t.Context(), tok)
		require.NoError(t, err)
		require.Equal(t, "backend", c.Subject)
	}
	require.Equal(t, 1, counting.calls, "a verified token is remembered")

	// Past its exp the token is verified again (and refused by the inner verifier's clock when
	// really expired); a forged token is never cached.
	now = now.Add(2 * time.Minute)
	_, _ = v.Verify(t.Context(), tok)
	require.Equal(t, 2, counting.calls)
	for range 2 {
		_, err = v.Verify(t.Context(), tok+"x")
		require.Error(t, err)
	}
	require.Equal(t, 4, counting.calls, "failures are not cached")

	// The cache is bounded.
	for i := range 5 {
		tk, err := Mint(secret, Claims{Subject: "s" + string(rune('a'+i))}, time.Hour)
		require.NoError(t, err)
		_, err = v.Verify(t.Context(), tk)
		require.NoError(t, err)
		require.LessOrEqual(t, len(v.seen), 2)
	}
}

// versionedVerifier is a verifier whose key set version the test moves.
type versionedVerifier struct {
	countingVerifier
	version uint64
	refuse  bool
}

func (v *versionedVerifier) keySetVersion() uint64 { return v.version }

func (v *versionedVerifier) Verify(ctx context.Context, tok string) (Claims, error) {
	if v.refuse {
		v.calls++
		return Claims{}, errUnknownKid
	}
	return v.countingVerifier.Verify(ctx, tok)
}

func TestCachingVerifierRechecksWhenKeysChange(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	inner, err := NewHS256Verifier(secret)
	require.NoError(t, err)
	vv := &versionedVerifier{countingVerifier: countingVerifier{inner: inner}}
	v := NewCachingVerifier(vv, 0)
	tok, err := Mint(secret, Claims{Subject: "backend", Roles: []Role{RoleService}}, time.Hour)
	require.NoError(t, err)

	steps := []struct {
		name      string
		version   uint64
		refuse    bool
		wantErr   bool
		wantCalls int
	}{
		{name: "first use verifies", wantCalls: 1},
		{name: "same keys: cached", wantCalls: 1},
		{name: "keys changed, token still valid: verified once more", version: 1, wantCalls: 2},
		{name: "cached again", version: 1, wantCalls: 2},
		{name: "keys changed, key gone: refused", version: 2, refuse: true, wantErr: true, wantCalls: 3},
		{name: "refusal is not cached", version: 2, refuse: true, wantErr: true, wantCalls: 4},
	}
	for _, st := range steps {
		vv.version, vv.refuse = st.version, st.refuse
		_, err := v.Verify(t.Context(), tok)
		if st.wantErr {
			require.Error(t, err, st.name)
		} else {
			require.NoError(t, err, st.name)
		}
		require.Equal(t, st.wantCalls, vv.calls, st.name)
	}
}

func TestJWKSVersionChangesOnlyWithTheKeys(t *testing.T) {
	t.Parallel()
	a, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	b, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwk := func(kid string, k *ecdsa.PublicKey) map[string]string {
		p, err := k.Bytes()
		require.NoError(t, err)
		enc := base64.RawURLEncoding.EncodeToString
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": enc(p[1:33]), "y": enc(p[33:])}
	}
	var mu sync.Mutex
	doc := []map[string]string{jwk("a", &a.PublicKey)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": doc})
	}))
	t.Cleanup(srv.Close)
	v, err := NewJWKSVerifier(t.Context(), JWKSConfig{URL: srv.URL, Refresh: time.Hour, MinRefetch: time.Millisecond})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return v.Ready() == nil }, 10*time.Second, time.Millisecond)

	// fetch waits for a fetch started now and returns the version it produced.
	fetch := func() uint64 {
		st := v.state.Load()
		v.askFetch()
		<-st.next
		return v.keySetVersion()
	}
	first := v.keySetVersion()
	require.Equal(t, first, fetch(), "the same document keeps the version")
	mu.Lock()
	doc = []map[string]string{jwk("a", &b.PublicKey)}
	mu.Unlock()
	second := fetch()
	require.NotEqual(t, first, second, "another key under the same kid is a change")
	mu.Lock()
	doc = []map[string]string{jwk("a", &b.PublicKey), jwk("b", &a.PublicKey)}
	mu.Unlock()
	require.NotEqual(t, second, fetch(), "an added key is a change")
}
