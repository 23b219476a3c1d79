package auth

import (
	"context"
	"sync"
	"time"
)

// keySetVersioner is a verifier whose keys change (JWKSVerifier): a token it verified stays
// verified only as long as the version does.
type keySetVersioner interface {
	keySetVersion() uint64
}

// cachedClaims is a verified token's identity and the key set version it was verified under.
type cachedClaims struct {
	claims  Claims
	version uint64
}

// cachingVerifier remembers tokens it verified until they expire or the keys change.
type cachingVerifier struct {
	next    Verifier
	keys    keySetVersioner // nil when next's keys never change
	maxSize int
	now     func() time.Time
	mu      sync.RWMutex
	seen    map[string]cachedClaims
}

// NewCachingVerifier wraps v so that a token verified once is not verified again until its exp:
// model backends send the same token on every call, and the per-call path then skips the
// signature check. When v's keys change (a JWKSVerifier fetched a different key set), every
// remembered token is verified again on its next use, so a token of a removed key stops being
// accepted as soon as its key is gone. Failures are never cached. maxSize bounds the remembered
// tokens (default 10,000; the cache starts over when full).
func NewCachingVerifier(v Verifier, maxSize int) Verifier {
	if maxSize <= 0 {
		maxSize = 10_000
	}
	c := &cachingVerifier{next: v, maxSize: maxSize, now: time.Now, seen: map[string]cachedClaims{}}
	c.keys, _ = v.(keySetVersioner)
	return c
}

// version returns the current key set version of the wrapped verifier.
func (c *cachingVerifier) version() uint64 {
	if c.keys == nil {
		return 0
	}
	return c.keys.keySetVersion()
}

// Verify implements Verifier.
func (c *cachingVerifier) Verify(ctx context.Context, token string) (Claims, error) {
	// Read the version before verifying: a key set change during the verification leaves the
	// entry under the older version, to be checked again.
	version := c.version()
	c.mu.RLock()
	hit, ok := c.seen[token]
	c.mu.RUnlock()
	if ok && hit.version == version && c.now().Before(hit.claims.ExpiresAt) {
		return hit.claims, nil
	}
	claims, err := c.next.Verify(ctx, token)
	if err != nil {
		if ok {
			c.mu.Lock()
			delete(c.seen, token)
			c.mu.Unlock()
		}
		return Claims{}, err
	}
	if claims.ExpiresAt.IsZero() {
		return claims, nil // nothing tells when to forget it
	}
	c.mu.Lock()
	if len(c.seen) >= c.maxSize {
		c.seen = map[string]cachedClaims{}
	}
	c.seen[token] = cachedClaims{claims: claims, version: version}
	c.mu.Unlock()
	return claims, nil
}

// Ready reports the wrapped verifier's readiness (nil for verifiers always ready).
func (c *cachingVerifier) Ready() error {
	if r, ok := c.next.(interface{ Ready() error }); ok {
		return r.Ready()
	}
	return nil
}
