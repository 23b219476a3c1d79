package auth

import (
	"context"
	"sync"
	"time"
)

// cachingVerifier remembers tokens it verified until they expire.
type cachingVerifier struct {
	next    Verifier
	maxSize int
	now     func() time.Time
	mu      sync.RWMutex
	seen    map[string]Claims
}

// NewCachingVerifier wraps v so that a token verified once is not verified again until its exp:
// model backends send the same token on every call, and the per-call path then skips the
// signature check. Failures are never cached. maxSize bounds the remembered tokens (default
// 10,000; the cache starts over when full).
func NewCachingVerifier(v Verifier, maxSize int) Verifier {
	if maxSize <= 0 {
		maxSize = 10_000
	}
	return &cachingVerifier{next: v, maxSize: maxSize, now: time.Now, seen: map[string]Claims{}}
}

// Verify implements Verifier.
func (c *cachingVerifier) Verify(ctx context.Context, token string) (Claims, error) {
	c.mu.RLock()
	claims, ok := c.seen[token]
	c.mu.RUnlock()
	if ok && c.now().Before(claims.ExpiresAt) {
		return claims, nil
	}
	claims, err := c.next.Verify(ctx, token)
	if err != nil {
		return Claims{}, err
	}
	if claims.ExpiresAt.IsZero() {
		return claims, nil // nothing tells when to forget it
	}
	c.mu.Lock()
	if len(c.seen) >= c.maxSize {
		c.seen = map[string]Claims{}
	}
	c.seen[token] = claims
	c.mu.Unlock()
	return claims, nil
}
