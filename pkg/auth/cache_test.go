package auth

import (
	"context"
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
	secret := []byte("0123456789abcdef0123")
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
