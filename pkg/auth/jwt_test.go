package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
)

// testSecretText is the HS256 secret of the tests.
const testSecretText = "0123456789abcdef-test-secret-0123"

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

// signedRaw returns a token whose header and payload are exactly the given JSON texts, HS256-signed
// with the test secret: the way to send what encoding/json cannot produce (duplicate names).
func signedRaw(header, payload string) string {
	enc := base64.RawURLEncoding
	text := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, []byte(testSecretText))
	mac.Write([]byte(text))
	return text + "." + enc.EncodeToString(mac.Sum(nil))
}

// hs256Header is the usual JOSE header of an HS256 token.
const hs256Header = `{"alg":"HS256","typ":"JWT"}`

// payload returns a valid claims object for user-1 of acme as JSON, with extra members
// (raw JSON, "name":value) inserted first.
func payload(extra ...string) string {
	now := time.Now().Unix()
	base := fmt.Sprintf(`"sub":"user-1","org_id":"acme","roles":["member"],"iat":%d,"exp":%d`, now, now+3600)
	if len(extra) == 0 {
		return "{" + base + "}"
	}
	return "{" + strings.Join(extra, ",") + "," + base + "}"
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

// withClaims returns standardClaims(0) changed by set (nil values delete).
func withClaims(set map[string]any) jwt.MapClaims {
	c := standardClaims(0)
	for k, v := range set {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func TestNewHS256VerifierRejectsShortSecret(t *testing.T) {
	_, err := auth.NewHS256Verifier([]byte("0123456789abcdef0123456789abcde")) // 31 bytes
	require.ErrorContains(t, err, "at least 32 bytes")
}

type verifierCase struct {
	name    string
	token   string
	want    auth.Claims
	wantErr string
}

// hs signs claims with the test secret.
func hs(t *testing.T) func(jwt.MapClaims) string {
	return func(c jwt.MapClaims) string { return signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", c) }
}

func acceptedTokens(t *testing.T) []verifierCase {
	minted, err := auth.Mint([]byte(testSecretText), auth.Claims{
		Subject: "service:payments",
		Roles:   []auth.Role{auth.RoleService},
	}, time.Minute)
	require.NoError(t, err)
	hs, now := hs(t), time.Now()
	return []verifierCase{
		{
			name:  "valid",
			token: hs(standardClaims(0)),
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
		{
			name:  "claims tally does not read are allowed",
			token: signedRaw(hs256Header, payload(`"scope":"read write"`, `"ext":{"a":1,"b":[1,2,{"c":null}]}`, `"email_verified":true`)),
			want:  auth.Claims{Subject: "user-1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}},
		},
		{
			name:  "fractional times",
			token: signedRaw(hs256Header, fmt.Sprintf(`{"sub":"user-1","iat":%d.25,"exp":%d.5}`, now.Unix(), now.Unix()+60)),
			want:  auth.Claims{Subject: "user-1"},
		},
		{
			name:  "aud as a string",
			token: hs(withClaims(map[string]any{"aud": "tally"})),
			want: auth.Claims{
				Subject: "user-1", OrgID: "acme", Email: "ada@example.com", Name: "Ada",
				Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin},
			},
		},
	}
}

func refusedStandard(t *testing.T) []verifierCase {
	hs, now := hs(t), time.Now()
	return []verifierCase{
		// Standard checks.
		{name: "expired", token: hs(standardClaims(-2 * time.Hour)), wantErr: "expired"},
		{name: "not yet valid", token: hs(standardClaims(time.Hour)), wantErr: "not valid yet"},
		{name: "wrong secret", token: signed(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-x"), "", standardClaims(0)), wantErr: "signature is invalid"},
		{name: "alg none", token: signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", standardClaims(0)), wantErr: "signing method none is invalid"},
		{name: "HS512", token: signed(t, jwt.SigningMethodHS512, []byte(testSecretText), "", standardClaims(0)), wantErr: "signing method HS512 is invalid"},
		{name: "missing sub", token: hs(withClaims(map[string]any{"sub": nil})), wantErr: "sub is empty"},
		{name: "missing exp", token: hs(withClaims(map[string]any{"exp": nil})), wantErr: "exp claim is required"},
		{name: "garbage", token: "not-a-jwt", wantErr: "three dot-separated segments"},
		{name: "too long", token: hs(withClaims(map[string]any{"pad": strings.Repeat("x", 20_000)})), wantErr: "longer than"},

		// Claim names are exact and unique.
		{name: "Roles", token: hs(withClaims(map[string]any{"Roles": []string{"ops"}})), wantErr: `claim "Roles" is not "roles"`},
		{name: "ROLE_S", token: hs(withClaims(map[string]any{"ROLE_S": []string{"ops"}})), wantErr: `claim "ROLE_S" is not "roles"`},
		{name: "ORG_ID", token: hs(withClaims(map[string]any{"ORG_ID": "globex"})), wantErr: `claim "ORG_ID" is not "org_id"`},
		{name: "orgId", token: hs(withClaims(map[string]any{"orgId": "globex"})), wantErr: `claim "orgId" is not "org_id"`},
		{name: "Sub", token: hs(withClaims(map[string]any{"Sub": "ops-1"})), wantErr: `claim "Sub" is not "sub"`},
		{name: "EXP", token: hs(withClaims(map[string]any{"EXP": now.Add(time.Hour).Unix()})), wantErr: `claim "EXP" is not "exp"`},
		{name: "case-folded roles alone grant nothing", token: hs(withClaims(map[string]any{"roles": nil, "ROLES": []string{"ops"}})), wantErr: "case-sensitive"},
		{name: "duplicate roles", token: signedRaw(hs256Header, payload(`"roles":["ops"]`)), wantErr: `member "roles" appears twice`},
		{name: "duplicate org_id", token: signedRaw(hs256Header, payload(`"org_id":"globex"`)), wantErr: `member "org_id" appears twice`},
		{name: "duplicate sub", token: signedRaw(hs256Header, payload(`"sub":"ops-1"`)), wantErr: `member "sub" appears twice`},
		{name: "duplicate exp", token: signedRaw(hs256Header, payload(fmt.Sprintf(`"exp":%d`, now.Add(1000*time.Hour).Unix()))), wantErr: `member "exp" appears twice`},
		{name: "duplicate spelled with an escape", token: signedRaw(hs256Header, payload(`"ro\u006ces":["ops"]`)), wantErr: `member "roles" appears twice`},
		{name: "duplicate in a nested claim", token: signedRaw(hs256Header, payload(`"ext":{"a":1,"a":2}`)), wantErr: `member "a" appears twice`},
		{name: "duplicate in the header", token: signedRaw(`{"alg":"HS256","alg":"HS256"}`, payload()), wantErr: `header: member "alg" appears twice`},
		{name: "crit header", token: signedRaw(`{"alg":"HS256","crit":["exp"]}`, payload()), wantErr: "crit"},
		{name: "kid not a string", token: signedRaw(`{"alg":"HS256","kid":7}`, payload()), wantErr: "kid is not a string"},
		{name: "long names are cut in errors", token: signedRaw(hs256Header, payload(`"`+strings.Repeat("k", 100)+`":1`, `"`+strings.Repeat("k", 100)+`":2`)), wantErr: strings.Repeat("k", 32) + `"…`},
	}
}

func refusedTypes(t *testing.T) []verifierCase {
	hs, now := hs(t), time.Now()
	return []verifierCase{
		// Types are strict.
		{name: "exp a string", token: hs(withClaims(map[string]any{"exp": fmt.Sprint(now.Add(time.Hour).Unix())})), wantErr: "exp is not a number"},
		{name: "iat a string", token: hs(withClaims(map[string]any{"iat": fmt.Sprint(now.Unix())})), wantErr: "iat is not a number"},
		{name: "nbf a boolean", token: hs(withClaims(map[string]any{"nbf": true})), wantErr: "nbf is not a number"},
		{name: "negative exp", token: hs(withClaims(map[string]any{"exp": -1})), wantErr: "exp is not a time"},
		{name: "exp past year 9999", token: hs(withClaims(map[string]any{"exp": 1e300})), wantErr: "exp is not a time"},
		{name: "roles a string", token: hs(withClaims(map[string]any{"roles": "ops"})), wantErr: "roles is not an array"},
		{name: "unknown role", token: hs(withClaims(map[string]any{"roles": []string{"member", "root"}})), wantErr: `unknown role "root"`},
		{name: "role not a string", token: hs(withClaims(map[string]any{"roles": []any{"member", 1}})), wantErr: "not a string"},
		{name: "roles null", token: hs(withClaims(map[string]any{"roles": []any(nil)})), wantErr: "roles is not an array"},
		{name: "org_id a number", token: hs(withClaims(map[string]any{"org_id": 42})), wantErr: "org_id is not a string"},
		{name: "email an array", token: hs(withClaims(map[string]any{"email": []string{"a@b.c"}})), wantErr: "email is not a string"},
		{name: "name an object", token: hs(withClaims(map[string]any{"name": map[string]any{"first": "Ada"}})), wantErr: "name is not a string"},
		{name: "sub a number", token: hs(withClaims(map[string]any{"sub": 7})), wantErr: "sub is not a string"},
		{name: "aud a number", token: hs(withClaims(map[string]any{"aud": 7})), wantErr: "aud is not a string or an array"},

		// The JSON itself is strict.
		{name: "payload an array", token: signedRaw(hs256Header, `["sub","user-1"]`), wantErr: "not an object"},
		{name: "data after the object", token: signedRaw(hs256Header, payload()+`{}`), wantErr: "malformed"},
		{name: "invalid UTF-8", token: signedRaw(hs256Header, payload(`"note":"`+"\xff"+`"`)), wantErr: "not valid UTF-8"},
		{name: "nested too deep", token: signedRaw(hs256Header, payload(`"ext":`+strings.Repeat("[", 40)+strings.Repeat("]", 40))), wantErr: "deeper than"},

		// The lifetime is bounded.
		{name: "valid for 25 hours", token: hs(withClaims(map[string]any{"exp": now.Add(25 * time.Hour).Unix()})), wantErr: "longer than the maximum lifetime 24h0m0s"},
		{name: "no iat and 25 hours left", token: hs(withClaims(map[string]any{"iat": nil, "exp": now.Add(25 * time.Hour).Unix()})), wantErr: "longer than the maximum lifetime"},
		{
			name:  "no iat and an hour left",
			token: hs(withClaims(map[string]any{"iat": nil})),
			want: auth.Claims{
				Subject: "user-1", OrgID: "acme", Email: "ada@example.com", Name: "Ada",
				Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin},
			},
		},
	}
}

func TestHS256Verifier(t *testing.T) {
	v, err := auth.NewHS256Verifier([]byte(testSecretText))
	require.NoError(t, err)
	tests := slices.Concat(acceptedTokens(t), refusedStandard(t), refusedTypes(t))
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
	claims["exp"] = time.Now().Add(30 * time.Hour).Unix()
	token := signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", claims)
	long := auth.WithMaxLifetime(48 * time.Hour)

	tests := []struct {
		name    string
		opts    []auth.Option
		wantErr string
	}{
		{name: "default lifetime", wantErr: "longer than the maximum lifetime 24h0m0s"},
		{name: "longer lifetime allowed", opts: []auth.Option{long}},
		{name: "shorter lifetime", opts: []auth.Option{auth.WithMaxLifetime(time.Hour)}, wantErr: "maximum lifetime 1h0m0s"},
		{name: "matching issuer and audience", opts: []auth.Option{long, auth.WithIssuer("https://id.tally.example"), auth.WithAudience("tally-api")}},
		{name: "wrong issuer", opts: []auth.Option{long, auth.WithIssuer("https://evil.example")}, wantErr: "invalid issuer"},
		{name: "wrong audience", opts: []auth.Option{long, auth.WithAudience("other")}, wantErr: "invalid audience"},
		{name: "clock past expiry", opts: []auth.Option{long, auth.WithClock(func() time.Time { return time.Now().Add(31 * time.Hour) })}, wantErr: "expired"},
		{
			name: "leeway covers skew",
			opts: []auth.Option{
				long,
				auth.WithClock(func() time.Time { return time.Now().Add(30*time.Hour + time.Minute) }),
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

func TestMintWritesIssuerAudienceAndClock(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return at }
	tok, err := auth.Mint([]byte(testSecretText), auth.Claims{Subject: "service:ledger", Roles: []auth.Role{auth.RoleService}}, time.Hour,
		auth.WithIssuer("https://id.tally.test"), auth.WithAudience("tally"), auth.WithClock(clock))
	require.NoError(t, err)
	v, err := auth.NewHS256Verifier([]byte(testSecretText), auth.WithIssuer("https://id.tally.test"), auth.WithAudience("tally"), auth.WithClock(clock))
	require.NoError(t, err)
	c, err := v.Verify(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, at.Add(time.Hour), c.ExpiresAt.UTC())
}

func TestMintErrors(t *testing.T) {
	tests := []struct {
		name    string
		secret  []byte
		claims  auth.Claims
		ttl     time.Duration
		opts    []auth.Option
		wantErr string
	}{
		{name: "short secret", secret: []byte("short"), claims: auth.Claims{Subject: "u"}, ttl: time.Minute, wantErr: "at least 32 bytes"},
		{name: "zero ttl", secret: []byte(testSecretText), claims: auth.Claims{Subject: "u"}, wantErr: "ttl must be positive"},
		{name: "ttl above the maximum lifetime", secret: []byte(testSecretText), claims: auth.Claims{Subject: "u"}, ttl: 25 * time.Hour, wantErr: "exceeds the maximum token lifetime 24h0m0s"},
		{
			name: "ttl above a configured maximum", secret: []byte(testSecretText), claims: auth.Claims{Subject: "u"}, ttl: 2 * time.Hour,
			opts: []auth.Option{auth.WithMaxLifetime(time.Hour)}, wantErr: "exceeds the maximum token lifetime 1h0m0s",
		},
		{name: "no subject", secret: []byte(testSecretText), ttl: time.Minute, wantErr: "subject is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.Mint(tt.secret, tt.claims, tt.ttl, tt.opts...)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
