package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
)

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// serviceToken mints a token for service:name valid for ttl from the clock's now.
func serviceToken(t *testing.T, clk *testClock, name string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Mint([]byte(testSecretText), auth.Claims{Subject: "service:" + name, Roles: []auth.Role{auth.RoleService}}, ttl, auth.WithClock(clk.Now))
	require.NoError(t, err)
	return tok
}

func TestStaticTokenSource(t *testing.T) {
	clk := newTestClock()
	tok := serviceToken(t, clk, "ledger", time.Hour)
	src, err := auth.NewStaticTokenSource(tok, auth.WithClock(clk.Now))
	require.NoError(t, err)
	got, err := src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, tok, got)
	require.NoError(t, src.Ready())

	clk.Advance(time.Hour)
	_, err = src.Token(t.Context())
	require.ErrorContains(t, err, "the static service token expired at")
	require.Error(t, src.Ready(), "an expired static token makes the service not ready")

	for name, bad := range map[string]string{
		"not a JWT":   "tok",
		"no exp":      signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", withClaims(map[string]any{"exp": nil})),
		"folded name": signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", withClaims(map[string]any{"Exp": 1})),
	} {
		_, err := auth.NewStaticTokenSource(bad)
		require.Error(t, err, name)
	}
}

func TestMintingTokenSource(t *testing.T) {
	clk := newTestClock()
	v, err := auth.NewHS256Verifier([]byte(testSecretText), auth.WithClock(clk.Now), auth.WithIssuer("https://id.tally.test"))
	require.NoError(t, err)
	src, err := auth.NewMintingTokenSource([]byte(testSecretText), auth.Claims{Subject: "service:ledger", Roles: []auth.Role{auth.RoleService}},
		15*time.Minute, auth.WithClock(clk.Now), auth.WithIssuer("https://id.tally.test"))
	require.NoError(t, err)

	first, err := src.Token(t.Context())
	require.NoError(t, err)
	c, err := v.Verify(t.Context(), first)
	require.NoError(t, err)
	require.Equal(t, "ledger", c.ServiceName())
	require.Equal(t, clk.Now().Add(15*time.Minute).Unix(), c.ExpiresAt.Unix(), "short-lived")

	clk.Advance(9 * time.Minute)
	same, err := src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, first, same, "reused for two thirds of its lifetime")

	clk.Advance(2 * time.Minute)
	renewed, err := src.Token(t.Context())
	require.NoError(t, err)
	require.NotEqual(t, first, renewed, "re-minted before it expires")
	_, err = v.Verify(t.Context(), renewed)
	require.NoError(t, err)

	_, err = auth.NewMintingTokenSource([]byte(testSecretText), auth.Claims{Subject: "service:ledger"}, 48*time.Hour)
	require.ErrorContains(t, err, "exceeds the maximum token lifetime")
}

func TestFileTokenSource(t *testing.T) {
	clk := newTestClock()
	path := filepath.Join(t.TempDir(), "token")
	src := auth.NewFileTokenSource(path, auth.WithClock(clk.Now))
	write := func(tok string) {
		require.NoError(t, os.WriteFile(path, []byte(tok+"\n"), 0o600))
	}

	_, err := src.Token(t.Context())
	require.ErrorContains(t, err, "no such file", "a missing file is not ready")
	require.Error(t, src.Ready())

	first := serviceToken(t, clk, "payments", 10*time.Minute)
	write(first)
	got, err := src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, first, got)

	// A new token written to the file is picked up at the next look (at most once a second).
	second := serviceToken(t, clk, "payments", 11*time.Minute)
	write(second)
	require.NoError(t, os.Chtimes(path, time.Now(), time.Now().Add(time.Minute))) // a visible change even within the file system's time granularity
	got, err = src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, first, got, "looked at less than a second ago")
	clk.Advance(2 * time.Second)
	got, err = src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, second, got)

	// Garbage in the file keeps the current token until it expires, then nothing is presented.
	write("garbage")
	require.NoError(t, os.Chtimes(path, time.Now(), time.Now().Add(2*time.Minute)))
	clk.Advance(2 * time.Second)
	got, err = src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, second, got)
	clk.Advance(11 * time.Minute)
	_, err = src.Token(t.Context())
	require.ErrorContains(t, err, "expired")
	require.ErrorContains(t, err, "three dot-separated segments", "the reason the file was refused is kept")

	// Repaired.
	third := serviceToken(t, clk, "payments", 10*time.Minute)
	write(third)
	clk.Advance(2 * time.Second)
	got, err = src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, third, got)
	require.NoError(t, src.Ready())
}

// oidcProvider is an identity provider serving a discovery document and a client credentials
// token endpoint that mints HS256 tokens with the test secret.
type oidcProvider struct {
	*httptest.Server
	issuer   string
	clk      *testClock
	ttl      time.Duration
	requests atomic.Int64
	down     atomic.Bool
}

func newOIDCProvider(t *testing.T, clk *testClock, ttl time.Duration) *oidcProvider {
	t.Helper()
	p := &oidcProvider{clk: clk, ttl: ttl}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.issuer, "token_endpoint": p.issuer + "/oauth/token"})
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		id, secret, ok := r.BasicAuth()
		switch {
		case p.down.Load():
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		case !ok || id != "ledger" || secret != "s3cret" || r.PostFormValue("grant_type") != "client_credentials":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		tok, err := auth.Mint([]byte(testSecretText), auth.Claims{Subject: "service:" + id, Roles: []auth.Role{auth.RoleService}}, p.ttl,
			auth.WithClock(p.clk.Now), auth.WithIssuer(p.issuer))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(p.ttl / time.Second)})
	})
	p.Server = httptest.NewServer(mux)
	p.issuer = p.URL
	t.Cleanup(p.Close)
	return p
}

func TestClientCredentialsSource(t *testing.T) {
	clk := newTestClock()
	idp := newOIDCProvider(t, clk, 10*time.Minute)
	src, err := auth.NewClientCredentialsSource(auth.ClientCredentialsConfig{
		Issuer: idp.issuer, ClientID: "ledger", ClientSecret: "s3cret", Client: idp.Client(), Now: clk.Now,
	})
	require.NoError(t, err)
	require.Error(t, src.Ready(), "not ready before a token was obtained")

	first, err := src.Token(t.Context())
	require.NoError(t, err)
	require.NoError(t, src.Ready())
	v, err := auth.NewHS256Verifier([]byte(testSecretText), auth.WithClock(clk.Now), auth.WithIssuer(idp.issuer))
	require.NoError(t, err)
	c, err := v.Verify(t.Context(), first)
	require.NoError(t, err)
	require.Equal(t, "ledger", c.ServiceName())

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			got, err := src.Token(t.Context())
			require.NoError(t, err)
			require.Equal(t, first, got)
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, idp.requests.Load(), "the token is reused")

	// Renewed before it expires; while the provider is down the current token is used.
	clk.Advance(7 * time.Minute)
	idp.down.Store(true)
	got, err := src.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, first, got)
	require.EqualValues(t, 2, idp.requests.Load())
	idp.down.Store(false)
	renewed, err := src.Token(t.Context())
	require.NoError(t, err)
	require.NotEqual(t, first, renewed)

	// Past the expiry with the provider down there is no token.
	clk.Advance(11 * time.Minute)
	idp.down.Store(true)
	_, err = src.Token(t.Context())
	require.ErrorContains(t, err, "answered 503")
	require.Error(t, src.Ready())
}

func TestClientCredentialsSourceErrors(t *testing.T) {
	clk := newTestClock()
	idp := newOIDCProvider(t, clk, time.Minute)
	tests := []struct {
		name    string
		cfg     auth.ClientCredentialsConfig
		wantErr string
	}{
		{name: "wrong secret", cfg: auth.ClientCredentialsConfig{Issuer: idp.issuer, ClientID: "ledger", ClientSecret: "nope"}, wantErr: `answered 401 "invalid_client"`},
		{name: "issuer mismatch", cfg: auth.ClientCredentialsConfig{Issuer: idp.issuer + "/", ClientID: "ledger", ClientSecret: "s3cret"}, wantErr: "names issuer"},
		{name: "no discovery", cfg: auth.ClientCredentialsConfig{Issuer: idp.issuer + "/tenant", ClientID: "ledger", ClientSecret: "s3cret"}, wantErr: "answered 404"},
		{name: "explicit token URL", cfg: auth.ClientCredentialsConfig{TokenURL: idp.issuer + "/oauth/token", ClientID: "ledger", ClientSecret: "s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Client, tt.cfg.Now = idp.Client(), clk.Now
			src, err := auth.NewClientCredentialsSource(tt.cfg)
			require.NoError(t, err)
			_, err = src.Token(t.Context())
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorContains(t, src.Ready(), tt.wantErr)
		})
	}
	_, err := auth.NewClientCredentialsSource(auth.ClientCredentialsConfig{Issuer: idp.issuer, ClientID: "ledger"})
	require.ErrorContains(t, err, "client secret are required")
}

// rotatingSource returns tokens from a list, one per call, then fails.
type rotatingSource struct {
	mu     sync.Mutex
	tokens []string
}

func (r *rotatingSource) Token(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tokens) == 0 {
		return "", auth.ErrUnavailable
	}
	tok := r.tokens[0]
	r.tokens = r.tokens[1:]
	return tok, nil
}

// TestSourceCredentialsOverGRPC: every call carries the source's current token; without one
// the call fails with Unavailable before reaching the server.
func TestSourceCredentialsOverGRPC(t *testing.T) {
	v, err := auth.NewHS256Verifier([]byte(testSecretText))
	require.NoError(t, err)
	srvConn := startServer(t, v, testPolicy())
	a := mint(t, auth.Claims{Subject: "user-a", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	b := mint(t, auth.Claims{Subject: "user-b", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	conn, err := grpc.NewClient(srvConn.Target(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(testCodec{})),
		grpc.WithPerRPCCredentials(auth.SourceCredentials(&rotatingSource{tokens: []string{a, b}})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	for _, want := range []string{"user-a", "user-b"} {
		var out echo
		require.NoError(t, conn.Invoke(t.Context(), mOrgRead, &orgReq{OrgId: "acme"}, &out))
		require.Equal(t, want, out.Subject)
	}
	err = conn.Invoke(t.Context(), mOrgRead, &orgReq{OrgId: "acme"}, &echo{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}
