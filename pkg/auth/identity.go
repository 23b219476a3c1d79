package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TokenSource supplies the bearer token a service presents on its calls to the others; the
// token may change from one call to the next (renewed before it expires).
type TokenSource interface {
	// Token returns a token valid now, or an error when there is none.
	Token(ctx context.Context) (string, error)
}

// renewAt returns when a token obtained at issued and valid until exp should be replaced: once
// two thirds of its lifetime have passed.
func renewAt(issued, exp time.Time) time.Time {
	return issued.Add(exp.Sub(issued) * 2 / 3)
}

// tokenExpiry reads the exp (and iat, when present) of a JWT without verifying it: a service
// learns when its own token runs out; admitting callers is Verify's job.
func tokenExpiry(token string) (iat, exp time.Time, err error) {
	tc, err := unverifiedClaims(token)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if tc.ExpiresAt == nil {
		return time.Time{}, time.Time{}, errors.New("the token has no exp")
	}
	if tc.IssuedAt != nil {
		iat = tc.IssuedAt.Time
	}
	return iat, tc.ExpiresAt.Time, nil
}

// StaticTokenSource presents one fixed token (TALLY_SERVICE_TOKEN) until its exp and fails
// afterwards: an expired token is never sent silently.
type StaticTokenSource struct {
	token string
	exp   time.Time
	now   func() time.Time
}

// NewStaticTokenSource returns a source for token, which must be a JWT with an exp. WithClock
// sets the clock.
func NewStaticTokenSource(token string, opts ...Option) (*StaticTokenSource, error) {
	_, exp, err := tokenExpiry(token)
	if err != nil {
		return nil, fmt.Errorf("static service token: %w", err)
	}
	return &StaticTokenSource{token: token, exp: exp, now: buildOptions(opts).now}, nil
}

// Token returns the token while it is valid.
func (s *StaticTokenSource) Token(context.Context) (string, error) {
	if err := s.Ready(); err != nil {
		return "", err
	}
	return s.token, nil
}

// Ready returns an error once the token has expired.
func (s *StaticTokenSource) Ready() error {
	if !s.now().Before(s.exp) {
		return fmt.Errorf("the static service token expired at %s", s.exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// MintingTokenSource mints HS256 tokens for one identity (a service's own, in HS256 mode) and
// mints a new one when two thirds of the current one's lifetime have passed.
type MintingTokenSource struct {
	secret []byte
	claims Claims
	ttl    time.Duration
	opts   []Option
	now    func() time.Time

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

// NewMintingTokenSource returns a source of tokens for c signed with secret, each valid for ttl.
// opts are Mint's (issuer, audience, maximum lifetime, clock). It fails when Mint would.
func NewMintingTokenSource(secret []byte, c Claims, ttl time.Duration, opts ...Option) (*MintingTokenSource, error) {
	s := &MintingTokenSource{secret: append([]byte(nil), secret...), claims: c, ttl: ttl, opts: opts, now: buildOptions(opts).now}
	if _, err := s.current(); err != nil {
		return nil, err
	}
	return s, nil
}

// Token returns the current token, minting a new one when it is due.
func (s *MintingTokenSource) Token(context.Context) (string, error) {
	return s.current()
}

// current returns the current token, minting a new one when it is due.
func (s *MintingTokenSource) current() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Before(s.renewAt) {
		return s.token, nil
	}
	tok, err := Mint(s.secret, s.claims, s.ttl, s.opts...)
	if err != nil {
		return "", err
	}
	s.token, s.renewAt = tok, renewAt(now, now.Add(s.ttl))
	return tok, nil
}

// fileCheckInterval is how often a FileTokenSource looks at its file.
const fileCheckInterval = time.Second

// FileTokenSource presents the token held in a file (TALLY_SERVICE_TOKEN_FILE), written and
// renewed by something else (a sidecar, a projected Kubernetes service account token). The file
// is looked at again at most once a second: read again when it changed, and while the current
// token is in the last third of its lifetime. A token past its exp is never presented.
type FileTokenSource struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	token   string
	exp     time.Time
	renewAt time.Time
	stamp   fileStamp
	checked time.Time
	err     error
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

// NewFileTokenSource returns a source reading path; the file may appear later. WithClock sets
// the clock.
func NewFileTokenSource(path string, opts ...Option) *FileTokenSource {
	return &FileTokenSource{path: path, now: buildOptions(opts).now}
}

// Token returns the file's token while it is valid.
func (s *FileTokenSource) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token == "" || now.Sub(s.checked) >= fileCheckInterval || now.Before(s.checked) {
		s.checked = now
		s.reload(now)
	}
	return s.current(now)
}

// Ready returns an error when the file holds no valid token.
func (s *FileTokenSource) Ready() error {
	_, err := s.Token(context.Background())
	return err
}

// current returns the token if it is still valid; the caller holds mu.
func (s *FileTokenSource) current(now time.Time) (string, error) {
	switch {
	case s.token == "" && s.err != nil:
		return "", s.err
	case s.token == "":
		return "", fmt.Errorf("no service token in %s", s.path)
	case !now.Before(s.exp):
		err := fmt.Errorf("the service token in %s expired at %s", s.path, s.exp.UTC().Format(time.RFC3339))
		if s.err != nil {
			err = fmt.Errorf("%w (%w)", err, s.err)
		}
		return "", err
	}
	return s.token, nil
}

// reload reads the file when it changed or the token is due for renewal; the caller holds mu.
// A failure keeps the current token (until its exp) and is remembered for the error messages.
func (s *FileTokenSource) reload(now time.Time) {
	fi, err := os.Stat(s.path)
	if err != nil {
		s.err = fmt.Errorf("reading the service token: %w", err)
		return
	}
	stamp := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if s.token != "" && stamp == s.stamp && now.Before(s.renewAt) {
		return
	}
	if fi.Size() > maxTokenBytes+1 {
		s.err = fmt.Errorf("reading the service token: %s is larger than %d bytes", s.path, maxTokenBytes)
		return
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		s.err = fmt.Errorf("reading the service token: %w", err)
		return
	}
	tok := strings.TrimSpace(string(b))
	s.stamp = stamp
	if tok == s.token {
		return
	}
	iat, exp, err := tokenExpiry(tok)
	if err != nil {
		s.err = fmt.Errorf("the service token in %s: %w", s.path, err)
		return
	}
	if iat.IsZero() || iat.After(now) {
		iat = now
	}
	s.token, s.exp, s.renewAt, s.err = tok, exp, renewAt(iat, exp), nil
}

// ClientCredentialsConfig configures a ClientCredentialsSource.
type ClientCredentialsConfig struct {
	// Issuer is the identity provider; its token endpoint is read from
	// <Issuer>/.well-known/openid-configuration unless TokenURL is set.
	Issuer   string
	TokenURL string
	// ClientID and ClientSecret identify the service to the provider (HTTP basic auth).
	ClientID     string
	ClientSecret string
	// Scope, when set, is requested.
	Scope string
	// Client makes the requests; nil means a default client. Each request has Timeout.
	Client *http.Client
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ClientCredentialsSource obtains the service's token from an OAuth2 token endpoint with the
// client credentials grant (RFC 6749 section 4.4) and obtains a new one when two thirds of its
// lifetime have passed. While a renewal fails the current token is used until its expiry.
type ClientCredentialsSource struct {
	cfg ClientCredentialsConfig

	// fetchMu makes one caller at a time talk to the provider.
	fetchMu sync.Mutex

	mu       sync.Mutex
	token    string
	exp      time.Time
	renewAt  time.Time
	tokenURL string
	err      error
}

// NewClientCredentialsSource returns a source for cfg; nothing is requested before the first Token.
func NewClientCredentialsSource(cfg ClientCredentialsConfig) (*ClientCredentialsSource, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("client credentials: a client id and a client secret are required")
	}
	if cfg.Issuer == "" && cfg.TokenURL == "" {
		return nil, errors.New("client credentials: an issuer or a token URL is required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &ClientCredentialsSource{cfg: cfg, tokenURL: cfg.TokenURL}, nil
}

// Token returns the current token, obtaining a new one when it is due.
func (s *ClientCredentialsSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	tok, exp, due := s.token, s.exp, s.renewAt
	s.mu.Unlock()
	now := s.cfg.Now()
	if tok != "" && now.Before(due) {
		return tok, nil
	}
	if tok != "" && now.Before(exp) {
		// Due for renewal but still valid: one caller renews, the others keep the current token.
		if !s.fetchMu.TryLock() {
			return tok, nil
		}
		defer s.fetchMu.Unlock()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		if fresh, err := s.fetchLocked(rctx); err == nil {
			return fresh, nil
		}
		return tok, nil
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	s.mu.Lock()
	tok, exp = s.token, s.exp
	s.mu.Unlock()
	if tok != "" && s.cfg.Now().Before(exp) {
		return tok, nil // another caller just obtained one
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return s.fetchLocked(rctx)
}

// Ready returns an error while the source holds no valid token.
func (s *ClientCredentialsSource) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && s.cfg.Now().Before(s.exp) {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	return errors.New("no token obtained from the token endpoint yet")
}

// fetchLocked obtains a token; the caller holds fetchMu.
func (s *ClientCredentialsSource) fetchLocked(ctx context.Context) (string, error) {
	tok, exp, err := s.request(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = fmt.Errorf("client credentials: %w", err)
		return "", s.err
	}
	s.token, s.exp, s.renewAt, s.err = tok, exp, renewAt(s.cfg.Now(), exp), nil
	return tok, nil
}

// tokenResponse is a successful token endpoint response (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken string      `json:"access_token"`
	TokenType   string      `json:"token_type"`
	ExpiresIn   json.Number `json:"expires_in"`
}

// request asks the token endpoint for a token and returns it with its expiry.
func (s *ClientCredentialsSource) request(ctx context.Context) (string, time.Time, error) {
	endpoint, err := s.endpoint(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if s.cfg.Scope != "" {
		form.Set("scope", s.cfg.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(s.cfg.ClientID), url.QueryEscape(s.cfg.ClientSecret))
	sent := s.cfg.Now()
	body, status, err := s.do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token request: %w", err)
	}
	if status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return "", time.Time{}, fmt.Errorf("token endpoint answered %d %s", status, shortName(e.Error))
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", time.Time{}, fmt.Errorf("token endpoint: decoding the response: %w", err)
	}
	if tr.AccessToken == "" {
		return "", time.Time{}, errors.New("token endpoint: no access_token in the response")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", time.Time{}, fmt.Errorf("token endpoint: token_type %s is not Bearer", shortName(tr.TokenType))
	}
	if tr.ExpiresIn != "" {
		secs, err := strconv.ParseInt(tr.ExpiresIn.String(), 10, 64)
		if err != nil || secs <= 0 || secs > maxExpiresIn {
			return "", time.Time{}, errors.New("token endpoint: expires_in is not a positive number of seconds")
		}
		return tr.AccessToken, sent.Add(time.Duration(secs) * time.Second), nil
	}
	_, exp, err := tokenExpiry(tr.AccessToken)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token endpoint: no expires_in and %w", err)
	}
	return tr.AccessToken, exp, nil
}

// endpoint returns the token endpoint, discovering it from the issuer the first time.
func (s *ClientCredentialsSource) endpoint(ctx context.Context) (string, error) {
	s.mu.Lock()
	known := s.tokenURL
	s.mu.Unlock()
	if known != "" {
		return known, nil
	}
	discovery := strings.TrimSuffix(s.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, discovery, nil)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	body, status, err := s.do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("discovery: %s answered %d", discovery, status)
	}
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: decoding %s: %w", discovery, err)
	}
	if doc.Issuer != s.cfg.Issuer {
		return "", fmt.Errorf("discovery: %s names issuer %s, not %s", discovery, shortName(doc.Issuer), s.cfg.Issuer)
	}
	if doc.TokenEndpoint == "" {
		return "", fmt.Errorf("discovery: %s has no token_endpoint", discovery)
	}
	s.mu.Lock()
	s.tokenURL = doc.TokenEndpoint
	s.mu.Unlock()
	return doc.TokenEndpoint, nil
}

// maxExpiresIn is the longest expires_in taken from a token endpoint, in seconds (a year).
const maxExpiresIn = 366 * 24 * 60 * 60

// maxProviderResponse bounds the responses read from the identity provider.
const maxProviderResponse = 1 << 20

// do sends req and returns the (bounded) body and status.
func (s *ClientCredentialsSource) do(req *http.Request) ([]byte, int, error) {
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderResponse+1))
	if err != nil {
		return nil, 0, err
	}
	if len(body) > maxProviderResponse {
		return nil, 0, fmt.Errorf("response exceeds %d bytes", maxProviderResponse)
	}
	return body, resp.StatusCode, nil
}

// UnverifiedExpiry reads the iat (zero when absent) and exp of a JWT without verifying it: for
// the holder of a token learning when to renew it (the gateway's sessions), never for admitting
// a caller, which is Verify's job.
func UnverifiedExpiry(token string) (iat, exp time.Time, err error) {
	return tokenExpiry(token)
}
