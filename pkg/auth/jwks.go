package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of a JWKSVerifier.
const (
	// DefaultJWKSRefresh is how often the keys are fetched again: a key removed from the JWKS is
	// refused at most this long after its removal.
	DefaultJWKSRefresh = 5 * time.Minute
	// DefaultJWKSMinRefetch is the least time between two fetches: tokens naming an unknown kid
	// (a key just published, or made up) share the next fetch and cannot force more.
	DefaultJWKSMinRefetch = 5 * time.Second
	// defaultJWKSFetchTimeout bounds one fetch.
	defaultJWKSFetchTimeout = 10 * time.Second
)

// Limits applied to JWKS documents.
const (
	maxJWKSBytes = 1 << 20
	minRSABits   = 2048
)

// errUnknownKid reports a token naming a key the JWKS does not hold.
var errUnknownKid = errors.New("unknown kid")

// JWKSConfig configures a JWKSVerifier.
type JWKSConfig struct {
	// URL of the JWKS document. Required.
	URL string
	// Client fetches it; nil means a client without a timeout of its own (each fetch has
	// FetchTimeout).
	Client *http.Client
	// Refresh is how often the keys are fetched again (default DefaultJWKSRefresh).
	Refresh time.Duration
	// MinRefetch is the least time between two fetches (default DefaultJWKSMinRefetch).
	MinRefetch time.Duration
	// FetchTimeout bounds one fetch (default 10s).
	FetchTimeout time.Duration
	// Logger receives fetch failures (warn) and key changes (info); nil discards.
	Logger *slog.Logger
}

// JWKSVerifier verifies RS256 and ES256 tokens against keys published as a JWKS document,
// fetched in the background: every Refresh, and when a token names an unknown kid, at most once
// per MinRefetch (concurrent requests share one fetch). Until the first fetch succeeds it is not
// Ready and Verify fails with ErrUnavailable; a failed fetch keeps the previous keys, is logged
// at warn and counted (FetchFailures), and never reaches the caller.
type JWKSVerifier struct {
	cfg      JWKSConfig
	opts     options
	parser   *jwt.Parser
	state    atomic.Pointer[keySet]
	demand   chan struct{}
	failures atomic.Uint64
}

// keySet is the outcome of the latest fetch attempt.
type keySet struct {
	// keys by kid; nil until a fetch succeeded.
	keys map[string]any
	// version changes whenever the keys do.
	version uint64
	// started is when the attempt began; zero before the first one.
	started time.Time
	// err is the attempt's failure, if any.
	err error
	// next is closed when the next attempt completes.
	next chan struct{}
}

// NewJWKSVerifier returns a verifier for the JWKS at cfg.URL and starts fetching it in the
// background until ctx is done. It does not wait for the keys: see Ready.
func NewJWKSVerifier(ctx context.Context, cfg JWKSConfig, opts ...Option) (*JWKSVerifier, error) {
	if cfg.URL == "" {
		return nil, errors.New("new JWKS verifier: url is required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultJWKSRefresh
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = DefaultJWKSMinRefetch
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = defaultJWKSFetchTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	o := buildOptions(opts)
	v := &JWKSVerifier{
		cfg:    cfg,
		opts:   o,
		parser: o.parser(jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()),
		demand: make(chan struct{}, 1),
	}
	v.state.Store(&keySet{next: make(chan struct{})})
	go v.run(ctx)
	return v, nil
}

// Ready returns nil once keys have been fetched, else why not.
func (v *JWKSVerifier) Ready() error {
	st := v.state.Load()
	switch {
	case st.keys != nil:
		return nil
	case st.err != nil:
		return fmt.Errorf("%w: fetching the JWKS: %w", ErrUnavailable, st.err)
	}
	return fmt.Errorf("%w: the JWKS has not been fetched yet", ErrUnavailable)
}

// FetchFailures returns how many JWKS fetches failed since the verifier started.
func (v *JWKSVerifier) FetchFailures() uint64 { return v.failures.Load() }

// keySetVersion changes whenever the keys do (see NewCachingVerifier).
func (v *JWKSVerifier) keySetVersion() uint64 { return v.state.Load().version }

// Verify checks token's signature with the key named by its kid header and its claims.
func (v *JWKSVerifier) Verify(ctx context.Context, token string) (Claims, error) {
	return v.opts.verify(v.parser, token, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid header")
		}
		key, err := v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if err := checkKeyMethod(key, t.Method); err != nil {
			return nil, fmt.Errorf("key %s: %w", shortName(kid), err)
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

// key returns the key named kid. An unknown kid waits for a fetch that starts after this call
// (so a key published a moment ago is found), bounded by ctx and by MinRefetch + FetchTimeout.
func (v *JWKSVerifier) key(ctx context.Context, kid string) (any, error) {
	arrived := time.Now()
	var timeout <-chan time.Time
	for {
		st := v.state.Load()
		if k, ok := st.keys[kid]; ok {
			return k, nil
		}
		if st.keys == nil {
			v.askFetch()
			return nil, v.Ready()
		}
		if !st.started.Before(arrived) {
			return nil, fmt.Errorf("%w %s", errUnknownKid, shortName(kid))
		}
		v.askFetch()
		if timeout == nil {
			t := time.NewTimer(v.cfg.MinRefetch + v.cfg.FetchTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-st.next:
		case <-timeout:
			return nil, fmt.Errorf("%w %s: no fetch in time", errUnknownKid, shortName(kid))
		case <-ctx.Done():
			return nil, fmt.Errorf("%w %s: %w", errUnknownKid, shortName(kid), ctx.Err())
		}
	}
}

// askFetch asks the background loop for a fetch; requests made while one is pending share it.
func (v *JWKSVerifier) askFetch() {
	select {
	case v.demand <- struct{}{}:
	default:
	}
}

// run fetches the keys at once, then every Refresh and on demand, never twice within
// MinRefetch. After a failure it retries sooner: MinRefetch, doubling up to Refresh.
func (v *JWKSVerifier) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last time.Time
	retry := v.cfg.MinRefetch
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-v.demand:
			if wait := time.Until(last.Add(v.cfg.MinRefetch)); wait > 0 {
				pause := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					pause.Stop()
					return
				case <-pause.C:
				case <-timer.C:
				}
				pause.Stop()
			}
		}
		last = time.Now()
		if v.fetchOnce(ctx, last) {
			retry = v.cfg.MinRefetch
			timer.Reset(v.cfg.Refresh)
			continue
		}
		timer.Reset(retry)
		retry = min(2*retry, v.cfg.Refresh)
	}
}

// fetchOnce fetches the JWKS and publishes the outcome; it reports success.
func (v *JWKSVerifier) fetchOnce(ctx context.Context, started time.Time) bool {
	fctx, cancel := context.WithTimeout(ctx, v.cfg.FetchTimeout)
	keys, err := v.fetch(fctx)
	cancel()
	if ctx.Err() != nil {
		return false // shutting down: nobody needs the outcome
	}
	old := v.state.Load()
	next := &keySet{keys: old.keys, version: old.version, started: started, err: err, next: make(chan struct{})}
	if err != nil {
		n := v.failures.Add(1)
		v.cfg.Logger.Warn("fetching the JWKS failed, keeping the previous keys", "url", v.cfg.URL, "err", err, "failures", n, "have_keys", old.keys != nil)
	} else {
		if !sameKeys(old.keys, keys) {
			next.version++
			v.cfg.Logger.Info("JWKS keys changed", "url", v.cfg.URL, "kids", kids(keys))
		}
		next.keys = keys
	}
	v.state.Store(next)
	close(old.next)
	return err == nil
}

// sameKeys reports whether a and b hold the same keys under the same kids.
func sameKeys(a, b map[string]any) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for kid, ka := range a {
		kb, ok := b[kid]
		if !ok {
			return false
		}
		e, ok := ka.(equaler)
		if !ok || !e.Equal(kb) {
			return false
		}
	}
	return true
}

// kids returns the sorted kids of keys, for logs.
func kids(keys map[string]any) []string {
	out := make([]string, 0, len(keys))
	for kid := range keys {
		out = append(out, kid)
	}
	slices.Sort(out)
	return out
}

// fetch downloads and parses the JWKS document.
func (v *JWKSVerifier) fetch(ctx context.Context) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch JWKS: document exceeds %d bytes", maxJWKSBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
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
