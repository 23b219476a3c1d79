package auth_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
)

// testSecretText is the HS256 secret of the tests.
const testSecretText = "0123456789abcdef-test-secret"

// signed returns claims signed with method and key, with kid in the header when not empty.
func signed(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// standardClaims returns valid claims for user-1 of acme, shifted by offset.
func standardClaims(offset time.Duration) jwt.MapClaims {
	now := time.Now().Add(offset)
	return jwt.MapClaims{
		"sub":    "user-1",
		"org_id": "acme",
		"email":  "ada@example.com",
		"name":   "Ada",
		"roles":  []string{"member", "admin"},
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
	}
}

func TestNewHS256VerifierRejectsShortSecret(t *testing.T) {
	_, err := auth.NewHS256Verifier([]byte("short"))
	require.ErrorContains(t, err, "at least 16 bytes")
}

func TestHS256Verifier(t *testing.T) {
	v, err := auth.NewHS256Verifier([]byte(testSecretText))
	require.NoError(t, err)

	minted, err := auth.Mint([]byte(testSecretText), auth.Claims{
		Subject: "service:payments",
		Roles:   []auth.Role{auth.RoleService},
	}, time.Minute)
	require.NoError(t, err)

	noSub := standardClaims(0)
	delete(noSub, "sub")
	noExp := standardClaims(0)
	delete(noExp, "exp")
	noneToken := signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", standardClaims(0))

	tests := []struct {
		name    string
		token   string
		want    auth.Claims
		wantErr string
	}{
		{
			name:  "valid",
			token: signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", standardClaims(0)),
			want: auth.Claims{
				Subject: "user-1", OrgID: "acme", Email: "ada@example.com", Name: "Ada",
				Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin},
			},
		},
		{
			name:  "minted service token",
			token: minted,
			want:  auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}},
		},
		{name: "expired", token: signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", standardClaims(-2*time.Hour)), wantErr: "expired"},
		{name: "not yet valid", token: signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", standardClaims(time.Hour)), wantErr: "not valid yet"},
		{name: "wrong secret", token: signed(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789"), "", standardClaims(0)), wantErr: "signature is invalid"},
		{name: "alg none", token: noneToken, wantErr: "signing method none is invalid"},
		{name: "HS512", token: signed(t, jwt.SigningMethodHS512, []byte(testSecretText), "", standardClaims(0)), wantErr: "signing method HS512 is invalid"},
		{name: "missing sub", token: signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", noSub), wantErr: "sub is empty"},
		{name: "missing exp", token: signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", noExp), wantErr: "exp claim is required"},
		{name: "garbage", token: "not-a-jwt", wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.False(t, got.ExpiresAt.IsZero(), "exp is carried into the claims")
			got.ExpiresAt = time.Time{}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestHS256VerifierOptions(t *testing.T) {
	claims := standardClaims(0)
	claims["iss"] = "https://id.tally.example"
	claims["aud"] = []string{"tally-api"}
	token := signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", claims)

	tests := []struct {
		name    string
		opts    []auth.Option
		wantErr string
	}{
		{name: "no checks"},
		{name: "matching issuer and audience", opts: []auth.Option{auth.WithIssuer("https://id.tally.example"), auth.WithAudience("tally-api")}},
		{name: "wrong issuer", opts: []auth.Option{auth.WithIssuer("https://evil.example")}, wantErr: "invalid issuer"},
		{name: "wrong audience", opts: []auth.Option{auth.WithAudience("other")}, wantErr: "invalid audience"},
		{name: "clock past expiry", opts: []auth.Option{auth.WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) })}, wantErr: "expired"},
		{
			name: "leeway covers skew",
			opts: []auth.Option{
				auth.WithClock(func() time.Time { return time.Now().Add(time.Hour + time.Minute) }),
				auth.WithLeeway(5 * time.Minute),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := auth.NewHS256Verifier([]byte(testSecretText), tt.opts...)
			require.NoError(t, err)
			_, err = v.Verify(t.Context(), token)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestMintErrors(t *testing.T) {
	tests := []struct {
		name    string
		secret  []byte
		claims  auth.Claims
		ttl     time.Duration
		wantErr string
	}{
		{name: "short secret", secret: []byte("short"), claims: auth.Claims{Subject: "u"}, ttl: time.Minute, wantErr: "at least 16 bytes"},
		{name: "zero ttl", secret: []byte(testSecretText), claims: auth.Claims{Subject: "u"}, wantErr: "ttl must be positive"},
		{name: "no subject", secret: []byte(testSecretText), ttl: time.Minute, wantErr: "subject is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.Mint(tt.secret, tt.claims, tt.ttl)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
