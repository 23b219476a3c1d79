package server_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/auth/authtest"
	"github.com/tallyhq/tally/pkg/config"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
)

// secret is a production-grade HS256 secret for the tests.
const secret = "server-test-secret-0123456789abcdef"

// authConfigCase is a case of TestLoadAuthConfig.
type authConfigCase struct {
	name     string
	env      map[string]string
	verifier bool // LoadVerifierConfig: no identity of its own needed
	want     func(*testing.T, server.AuthConfig)
	wantErr  string
}

// authConfigCases are the cases of TestLoadAuthConfig.
func authConfigCases(t *testing.T) []authConfigCase {
	t.Helper()
	static, err := auth.Mint([]byte(secret), auth.Claims{Subject: "service:ledger", Roles: []auth.Role{auth.RoleService}}, time.Hour)
	require.NoError(t, err)
	prodJWKS := map[string]string{
		"TALLY_JWKS_URL": "https://id.example.com/jwks", "TALLY_JWT_ISSUER": "https://id.example.com", "TALLY_JWT_AUDIENCE": "tally",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []authConfigCase{
		{
			name:    "production without a secret fails closed",
			env:     map[string]string{},
			wantErr: "TALLY_JWT_SECRET (at least 32 bytes) or TALLY_JWKS_URL is required; TALLY_ENV=development uses a built-in development secret",
		},
		{
			name: "development uses the built-in secret",
			env:  map[string]string{"TALLY_ENV": "development"},
			want: func(t *testing.T, c server.AuthConfig) {
				require.True(t, c.Development)
				require.Equal(t, server.DevJWTSecret, c.JWTSecret)
				require.Equal(t, 24*time.Hour, c.MaxLifetime)
				require.Equal(t, 5*time.Minute, c.JWKSRefresh)
			},
		},
		{name: "production refuses the development secret", env: map[string]string{"TALLY_JWT_SECRET": server.DevJWTSecret}, wantErr: "public development secret"},
		{name: "short secret", env: map[string]string{"TALLY_JWT_SECRET": "0123456789abcdef0123456789abcde"}, wantErr: "at least 32 bytes"},
		{name: "short secret in development", env: map[string]string{"TALLY_ENV": "development", "TALLY_JWT_SECRET": "short-secret"}, wantErr: "at least 32 bytes"},
		{
			name: "production secret",
			env:  map[string]string{"TALLY_JWT_SECRET": secret, "TALLY_JWT_MAX_LIFETIME": "1h"},
			want: func(t *testing.T, c server.AuthConfig) {
				require.False(t, c.Development)
				require.Equal(t, time.Hour, c.MaxLifetime)
			},
		},
		{name: "unknown mode", env: map[string]string{"TALLY_ENV": "dev", "TALLY_JWT_SECRET": secret}, wantErr: `TALLY_ENV: "dev"`},
		{name: "JWKS needs issuer and audience", env: map[string]string{"TALLY_JWKS_URL": "https://id.example.com/jwks", "TALLY_SERVICE_TOKEN_FILE": "/run/token"}, wantErr: "TALLY_JWT_ISSUER and TALLY_JWT_AUDIENCE are required"},
		{name: "JWKS over http", env: with(prodJWKS, "TALLY_JWKS_URL", "http://id.example.com/jwks", "TALLY_SERVICE_TOKEN_FILE", "/run/token"), wantErr: "must be https"},
		{name: "JWKS not a URL", env: with(prodJWKS, "TALLY_JWKS_URL", "id.example.com", "TALLY_SERVICE_TOKEN_FILE", "/run/token"), wantErr: "not an http(s) URL"},
		{name: "JWKS needs an identity", env: prodJWKS, wantErr: "needs its own identity"},
		{name: "a service calling no other needs no identity", env: prodJWKS, verifier: true},
		{
			name: "JWKS with a token file",
			env:  with(prodJWKS, "TALLY_SERVICE_TOKEN_FILE", "/run/token", "TALLY_JWKS_REFRESH", "1m"),
			want: func(t *testing.T, c server.AuthConfig) {
				require.Equal(t, "/run/token", c.ServiceTokenFile)
				require.Equal(t, time.Minute, c.JWKSRefresh)
			},
		},
		{name: "JWKS with client credentials", env: with(prodJWKS, "TALLY_OAUTH_CLIENT_ID", "ledger", "TALLY_OAUTH_CLIENT_SECRET", "s3cret")},
		{name: "client id without secret", env: with(prodJWKS, "TALLY_OAUTH_CLIENT_ID", "ledger"), wantErr: "go together"},
		{name: "two identities", env: with(prodJWKS, "TALLY_OAUTH_CLIENT_ID", "ledger", "TALLY_OAUTH_CLIENT_SECRET", "s3cret", "TALLY_SERVICE_TOKEN_FILE", "/run/token"), wantErr: "only one of"},
		{name: "static token not a JWT", env: with(prodJWKS, "TALLY_SERVICE_TOKEN", "tok"), wantErr: "TALLY_SERVICE_TOKEN"},
		{name: "static token", env: with(prodJWKS, "TALLY_SERVICE_TOKEN", static)},
		{name: "development JWKS over http without issuer", env: map[string]string{"TALLY_ENV": "development", "TALLY_JWKS_URL": "http://localhost:8000/jwks", "TALLY_SERVICE_TOKEN_FILE": "/t"}},
		{name: "durations positive", env: map[string]string{"TALLY_JWT_SECRET": secret, "TALLY_JWKS_MIN_REFETCH": "0s"}, wantErr: "must be positive"},
	}
}

func TestLoadAuthConfig(t *testing.T) {
	t.Parallel()
	tests := authConfigCases(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := config.FromMap(tt.env)
			var c server.AuthConfig
			if tt.verifier {
				c = server.LoadVerifierConfig(e)
			} else {
				c = server.LoadAuthConfig(e)
			}
			err := e.Err()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			if tt.want != nil {
				tt.want(t, c)
			}
		})
	}
}

func TestLoadAuthConfigOneLineWithoutSecret(t *testing.T) {
	t.Parallel()
	e := config.FromMap(map[string]string{})
	_ = server.LoadAuthConfig(e)
	require.Error(t, e.Err())
	require.NotContains(t, e.Err().Error(), "\n", "one clear line")
}

// admittedPricing answers ListModelPrices, the one method the test policy admits, when the call
// carries the claims the auth interceptor puts in its context: a call that succeeds passed the
// interceptors with its identity. The embedded type is what generated gRPC servers
// require for the methods a server does not offer; no test calls them.
type admittedPricing struct {
	pricingv1.UnimplementedPricingServiceServer
}

func (admittedPricing) ListModelPrices(ctx context.Context, _ *pricingv1.ListModelPricesRequest) (*pricingv1.ListModelPricesResponse, error) {
	claims, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "admitted without claims")
	}
	if claims.Subject == "" {
		return nil, status.Error(codes.Internal, "admitted without a subject")
	}
	return &pricingv1.ListModelPricesResponse{}, nil
}

// testServer runs a server for a with a policy admitting members to ListModelPrices.
type testServer struct {
	srv  *server.Server
	conn *grpc.ClientConn
	addr string
}

func startServer(t *testing.T, a *server.Auth, logger *slog.Logger) *testServer {
	t.Helper()
	return serveAdmittedPricing(t, server.Config{Name: "ledger", Logger: logger, Auth: a})
}

// serveAdmittedPricing serves admittedPricing with cfg and the policy admitting members to
// ListModelPrices.
func serveAdmittedPricing(t *testing.T, cfg server.Config) *testServer {
	t.Helper()
	cfg.Policy = auth.Policy{pricingv1.PricingService_ListModelPrices_FullMethodName: {Roles: []auth.Role{auth.RoleMember}}}
	srv, err := server.New(cfg)
	require.NoError(t, err)
	pricingv1.RegisterPricingServiceServer(srv.GRPC(), admittedPricing{})
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	conn, err := rpcclient.Dial(lis.Addr().String(), "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &testServer{srv: srv, conn: conn, addr: lis.Addr().String()}
}

func (s *testServer) health(t *testing.T) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(s.conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health needs no token and is always answered")
	return resp.GetStatus()
}

// call calls ListModelPrices with token.
func (s *testServer) call(t *testing.T, token string) error {
	t.Helper()
	_, err := pricingv1.NewPricingServiceClient(s.conn).ListModelPrices(auth.OutgoingContext(t.Context(), token), &pricingv1.ListModelPricesRequest{})
	return err
}

// requireAdmitted requires the call to have passed the interceptors and been answered by the
// handler with its identity.
func requireAdmitted(t *testing.T, err error) {
	t.Helper()
	require.NoError(t, err, "the interceptors refused a call they should admit")
}

func TestNewAuthHS256(t *testing.T) {
	t.Parallel()
	a, err := server.NewAuth(t.Context(), server.AuthConfig{JWTSecret: secret, Issuer: "https://id.tally.test"}, "ledger", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, a.Ready())
	tok, err := a.Identity().Token(t.Context())
	require.NoError(t, err)
	c, err := a.Verifier().Verify(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, "ledger", c.ServiceName())
	require.WithinDuration(t, time.Now().Add(15*time.Minute), c.ExpiresAt, time.Minute, "service tokens are short-lived")

	s := startServer(t, a, slog.New(slog.DiscardHandler))
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, s.health(t))
	member, err := auth.Mint([]byte(secret), auth.Claims{Subject: "u", Roles: []auth.Role{auth.RoleMember}}, time.Hour, auth.WithIssuer("https://id.tally.test"))
	require.NoError(t, err)
	requireAdmitted(t, s.call(t, member))
	noIssuer, err := auth.Mint([]byte(secret), auth.Claims{Subject: "u", Roles: []auth.Role{auth.RoleMember}}, time.Hour)
	require.NoError(t, err)
	err = s.call(t, noIssuer)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.Equal(t, "invalid token", status.Convert(err).Message())

	_, err = server.NewAuth(t.Context(), server.AuthConfig{}, "ledger", slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "TALLY_JWT_SECRET (at least 32 bytes) or TALLY_JWKS_URL is required")
}

// TestIdentityInvalidMeansNotReady: a service whose own token is expired, for another service or
// refused by its verifier reports NOT_SERVING and refuses calls with Unavailable, never runs
// half-working.
func TestIdentityInvalidMeansNotReady(t *testing.T) {
	t.Parallel()
	mint := func(sub string, ttl time.Duration, opts ...auth.Option) string {
		tok, err := auth.Mint([]byte(secret), auth.Claims{Subject: sub, Roles: []auth.Role{auth.RoleService}}, ttl, opts...)
		require.NoError(t, err)
		return tok
	}
	tests := []struct {
		name    string
		token   string
		wantLog string
	}{
		{name: "expired static token", token: mint("service:ledger", time.Minute, auth.WithClock(func() time.Time { return time.Now().Add(-time.Hour) })), wantLog: "the static service token expired"},
		{name: "token of another service", token: mint("service:payments", time.Hour), wantLog: "not service:ledger"},
		{name: "token of another secret", token: func() string {
			tok, err := auth.Mint([]byte("another-secret-0123456789abcdef-x"), auth.Claims{Subject: "service:ledger", Roles: []auth.Role{auth.RoleService}}, time.Hour)
			require.NoError(t, err)
			return tok
		}(), wantLog: "own token is refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs testenv.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			a, err := server.NewAuth(t.Context(), server.AuthConfig{JWTSecret: secret, ServiceToken: tt.token}, "ledger", logger)
			require.NoError(t, err)
			require.ErrorContains(t, a.Ready(), tt.wantLog)
			require.Contains(t, logs.String(), `"level":"WARN","msg":"service identity is not valid: not ready"`)
			s := startServer(t, a, logger)
			require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, s.health(t))
			member, err := auth.Mint([]byte(secret), auth.Claims{Subject: "u", Roles: []auth.Role{auth.RoleMember}}, time.Hour)
			require.NoError(t, err)
			err = s.call(t, member)
			require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
			require.Equal(t, "the service is not ready yet, retry later", status.Convert(err).Message())
		})
	}
}

// TestJWKSModeWithOIDCProvider runs a production service against a real OIDC provider (RS256 and
// ES256 keys as a JWKS, discovery, client credentials): started while the provider is down it is
// NOT_SERVING and answers Unavailable, without the JWKS URL or the dial error in any answer; it
// becomes SERVING when the keys arrive, checks issuer and audience, and its own identity comes
// from the token endpoint and is renewed.
func TestJWKSModeWithOIDCProvider(t *testing.T) {
	t.Parallel()
	idp := authtest.New(t)
	idp.AddClient("ledger-client", "s3cret", "ledger")
	idp.SetDown(true)
	var logs testenv.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	cfg := server.AuthConfig{
		JWKSURL: idp.JWKSURL(), Issuer: idp.Issuer, Audience: authtest.Audience,
		MaxLifetime: 24 * time.Hour, JWKSRefresh: time.Minute, JWKSMinRefetch: 50 * time.Millisecond,
		OAuthClientID: "ledger-client", OAuthClientSecret: "s3cret", HTTPClient: idp.Client(),
	}
	a, err := server.NewAuth(t.Context(), cfg, "ledger", logger)
	require.NoError(t, err)
	s := startServer(t, a, logger)
	member := idp.Token(t, auth.Claims{Subject: "user-1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})

	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, s.health(t))
	err = s.call(t, member)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.NotContains(t, status.Convert(err).Message(), "jwks")
	require.NotContains(t, status.Convert(err).Message(), "127.0.0.1")
	require.Eventually(t, func() bool {
		n, err := testutil.GatherAndCount(s.srv.Registry(), "tally_auth_jwks_fetch_failures_total")
		return err == nil && n == 1 && metricValue(t, s.srv, "tally_auth_jwks_fetch_failures_total") >= 1
	}, 10*time.Second, 10*time.Millisecond, "failed fetches are counted on /metrics")
	require.Contains(t, logs.String(), `"level":"WARN","msg":"fetching the JWKS failed, keeping the previous keys"`)

	idp.SetDown(false)
	require.Eventually(t, func() bool {
		return s.health(t) == healthpb.HealthCheckResponse_SERVING
	}, 15*time.Second, 20*time.Millisecond, "SERVING once the keys and the service's token arrive")
	requireAdmitted(t, s.call(t, member))

	// Issuer and audience are checked.
	wrongAud := idp.Claims(auth.Claims{Subject: "user-1", Roles: []auth.Role{auth.RoleMember}}, time.Hour)
	wrongAud["aud"] = "another-api"
	wrongIss := idp.Claims(auth.Claims{Subject: "user-1", Roles: []auth.Role{auth.RoleMember}}, time.Hour)
	wrongIss["iss"] = "https://evil.test"
	for _, tok := range []string{idp.Sign(t, "es-1", wrongAud), idp.Sign(t, "rs-1", wrongIss)} {
		err := s.call(t, tok)
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.Equal(t, "invalid token", status.Convert(err).Message())
	}
	idp.SignWith("rs-1")
	requireAdmitted(t, s.call(t, idp.Token(t, auth.Claims{Subject: "user-1", Roles: []auth.Role{auth.RoleMember}})))

	// The service's own identity came from the token endpoint.
	tok, err := a.Identity().Token(t.Context())
	require.NoError(t, err)
	c, err := a.Verifier().Verify(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, "ledger", c.ServiceName())
	require.GreaterOrEqual(t, idp.TokenRequests(), int64(1))
}

// TestServiceTokenFileIdentity: in JWKS mode the service presents the token of its token file,
// NOT_SERVING while the file holds none valid.
func TestServiceTokenFileIdentity(t *testing.T) {
	t.Parallel()
	idp := authtest.New(t)
	path := filepath.Join(t.TempDir(), "token")
	a, err := server.NewAuth(t.Context(), server.AuthConfig{
		JWKSURL: idp.JWKSURL(), Issuer: idp.Issuer, Audience: authtest.Audience, HTTPClient: idp.Client(),
		MaxLifetime: 24 * time.Hour, JWKSRefresh: time.Minute, JWKSMinRefetch: 50 * time.Millisecond,
		ServiceTokenFile: path,
	}, "ledger", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	s := startServer(t, a, slog.New(slog.DiscardHandler))
	require.Eventually(t, func() bool { return strings.Contains(errString(a.Ready()), "no such file") }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, s.health(t))

	require.NoError(t, os.WriteFile(path, []byte(idp.Token(t, auth.Claims{Subject: "service:ledger", Roles: []auth.Role{auth.RoleService}})), 0o600))
	require.Eventually(t, func() bool {
		return s.health(t) == healthpb.HealthCheckResponse_SERVING
	}, 15*time.Second, 20*time.Millisecond)
	got, err := a.Identity().Token(t.Context())
	require.NoError(t, err)
	c, err := a.Verifier().Verify(t.Context(), got)
	require.NoError(t, err)
	require.Equal(t, "ledger", c.ServiceName())
}

// metricValue returns the value of the counter name in srv's registry.
func metricValue(t *testing.T, srv *server.Server, name string) float64 {
	t.Helper()
	families, err := srv.Registry().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestJWKSAndSecretTogether: with both a JWKS and a secret, the provider's tokens and the
// services' own HS256 tokens are accepted, and the service mints its identity with the secret.
func TestJWKSAndSecretTogether(t *testing.T) {
	t.Parallel()
	idp := authtest.New(t)
	cfg := server.AuthConfig{
		JWKSURL: idp.JWKSURL(), JWTSecret: secret, Issuer: idp.Issuer, Audience: authtest.Audience,
		MaxLifetime: 24 * time.Hour, JWKSRefresh: time.Minute, JWKSMinRefetch: 50 * time.Millisecond, HTTPClient: idp.Client(),
	}
	a, err := server.NewAuth(t.Context(), cfg, "ledger", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	s := startServer(t, a, slog.New(slog.DiscardHandler))
	require.Eventually(t, func() bool {
		return s.health(t) == healthpb.HealthCheckResponse_SERVING
	}, 15*time.Second, 20*time.Millisecond, "SERVING once the keys arrive")
	own, err := a.Identity().Token(t.Context())
	require.NoError(t, err)
	c, err := a.Verifier().Verify(t.Context(), own)
	require.NoError(t, err)
	require.Equal(t, "ledger", c.ServiceName())

	person := auth.Claims{Subject: "user-1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}
	requireAdmitted(t, s.call(t, idp.Token(t, person)))
	minted, err := auth.Mint([]byte(secret), person, time.Hour, auth.WithIssuer(idp.Issuer), auth.WithAudience(authtest.Audience))
	require.NoError(t, err)
	requireAdmitted(t, s.call(t, minted))
	otherSecret, err := auth.Mint([]byte(secret+"-other"), person, time.Hour, auth.WithIssuer(idp.Issuer), auth.WithAudience(authtest.Audience))
	require.NoError(t, err)
	err = s.call(t, otherSecret)
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	_, err = server.NewAuth(t.Context(), server.AuthConfig{JWKSURL: idp.JWKSURL(), JWTSecret: server.DevJWTSecret, Issuer: idp.Issuer, Audience: authtest.Audience}, "ledger", slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "public development secret", "outside development the public secret is refused beside a JWKS too")
}
