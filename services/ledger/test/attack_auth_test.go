package test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/auth/authtest"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// countRows returns the number of rows of the ledger's table.
func countRows(t *testing.T, dbURL, table string) int {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// writeAttempts tries every kind of ledger write with conn's token and returns the errors.
func writeAttempts(t *testing.T, c ledgerv1.LedgerServiceClient) map[string]error {
	t.Helper()
	ctx := t.Context()
	errs := map[string]error{}
	_, errs["Credit"] = c.Credit(ctx, &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd(1000 * unit), IdempotencyKey: "attack-credit", Reason: "free money"})
	_, errs["Adjust"] = c.Adjust(ctx, &ledgerv1.AdjustRequest{OrgId: "acme", Amount: usd(1000 * unit), Reason: "free money"})
	_, errs["Debit"] = c.Debit(ctx, &ledgerv1.DebitRequest{OrgId: "globex", Amount: usd(unit), IdempotencyKey: "attack-debit"})
	_, errs["Reserve"] = c.Reserve(ctx, &ledgerv1.ReserveRequest{OrgId: "globex", Amount: usd(unit), IdempotencyKey: "attack-hold"})
	return errs
}

// TestAttackClaimsParsedExactly: tokens with a valid signature whose claims are case-folded,
// duplicated, mistyped, without exp or too long-lived are invalid — Unauthenticated with a plain
// message for every write — and nothing is written.
func TestAttackClaimsParsedExactly(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	now := time.Now().Unix()
	times := fmt.Sprintf(`"iat":%d,"exp":%d`, now, now+3600)
	attacks := []struct {
		name   string
		claims string
	}{
		{"case-folded roles", `{"sub":"mallory",` + times + `,"ROLES":["ops"]}`},
		{"capitalised roles", `{"sub":"mallory",` + times + `,"Roles":["ops"]}`},
		{"roles with an underscore", `{"sub":"mallory",` + times + `,"ROLE_S":["ops"]}`},
		{"case-folded org_id", `{"sub":"mallory",` + times + `,"roles":["member"],"org_id":"mallory-inc","ORG_ID":"acme"}`},
		{"case-folded subject", `{"sub":"mallory","Sub":"service:payments",` + times + `,"roles":["service"]}`},
		{"duplicated roles", `{"sub":"mallory",` + times + `,"roles":["member"],"roles":["ops"]}`},
		{"duplicated roles by escape", `{"sub":"mallory",` + times + `,"roles":["member"],"rol\u0065s":["ops"]}`},
		{"duplicated subject", `{"sub":"mallory","sub":"service:payments",` + times + `,"roles":["service"]}`},
		{"duplicated org_id", `{"sub":"mallory",` + times + `,"roles":["admin"],"org_id":"mallory-inc","org_id":"acme"}`},
		{"duplicated exp", fmt.Sprintf(`{"sub":"mallory","roles":["ops"],"iat":%d,"exp":%d,"exp":%d}`, now, now+3600, now+10*365*86400)},
		{"roles a string", `{"sub":"mallory",` + times + `,"roles":"ops"}`},
		{"unknown role", `{"sub":"mallory",` + times + `,"roles":["ops","root"]}`},
		{"exp a string", fmt.Sprintf(`{"sub":"mallory","roles":["ops"],"iat":%d,"exp":"%d"}`, now, now+3600)},
		{"no exp", fmt.Sprintf(`{"sub":"mallory","roles":["ops"],"iat":%d}`, now)},
		{"ten-year token", fmt.Sprintf(`{"sub":"mallory","roles":["ops"],"iat":%d,"exp":%d}`, now, now+10*365*86400)},
		{"no iat and a year left", fmt.Sprintf(`{"sub":"mallory","roles":["ops"],"exp":%d}`, now+365*86400)},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			c := l.Client(t, ledgertest.RawToken(a.claims))
			for rpc, err := range writeAttempts(t, c) {
				require.Equal(t, codes.Unauthenticated.String(), status.Code(err).String(), "%s: %v", rpc, err)
				require.Equal(t, "invalid token", status.Convert(err).Message(), "%s: no parser text, no method name", rpc)
			}
		})
	}
	// The same payloads without the trick are accepted: the refusals above are about the trick.
	ops := l.Client(t, ledgertest.RawToken(`{"sub":"ops-1",`+times+`,"roles":["ops"]}`))
	require.Zero(t, nanos(t, balance(t, ops, "acme").GetBalance()))
	require.Zero(t, countRows(t, l.DatabaseURL, "ledger.transactions"), "nothing was written")
	require.Zero(t, countRows(t, l.DatabaseURL, "ledger.holds"), "nothing was written")
}

// TestAttackProductionDefaultsFailClosed builds the ledger binary and starts it alone, as an
// operator would: without TALLY_ENV=development and without a real secret it exits with status 2
// and one line naming what is missing, before touching the database; with TALLY_ENV=development
// it starts on the built-in secret.
func TestAttackProductionDefaultsFailClosed(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "ledger")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/tallyhq/tally/services/ledger/cmd/ledger")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	dbURL := testenv.PostgresURL(t)

	tests := []struct {
		name    string
		env     []string
		wantErr string
	}{
		{name: "no secret, no JWKS", wantErr: "ledger: configuration: TALLY_JWT_SECRET (at least 32 bytes) or TALLY_JWKS_URL is required; TALLY_ENV=development uses a built-in development secret"},
		{name: "the public development secret", env: []string{"TALLY_JWT_SECRET=" + server.DevJWTSecret}, wantErr: "TALLY_JWT_SECRET is the public development secret"},
		{name: "a short secret", env: []string{"TALLY_JWT_SECRET=tally-dev-secret-change-me"}, wantErr: "TALLY_JWT_SECRET must be at least 32 bytes"},
		{name: "explicit production", env: []string{"TALLY_ENV=production"}, wantErr: "TALLY_JWT_SECRET (at least 32 bytes) or TALLY_JWKS_URL is required"},
		{name: "JWKS without issuer and audience", env: []string{"TALLY_JWKS_URL=https://id.example.com/jwks", "TALLY_SERVICE_TOKEN_FILE=/run/tally/token"}, wantErr: "TALLY_JWT_ISSUER and TALLY_JWT_AUDIENCE are required"},
		{name: "JWKS without an identity", env: []string{"TALLY_JWKS_URL=https://id.example.com/jwks", "TALLY_JWT_ISSUER=https://id.example.com", "TALLY_JWT_AUDIENCE=tally"}, wantErr: "needs its own identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin)
			cmd.Env = append(aloneEnv(dbURL, "127.0.0.1:0"), tt.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the ledger must not start: %s", stderr.String())
			require.Equal(t, 2, exit.ExitCode())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			require.Len(t, lines, 1, "one clear line: %q", stderr.String())
			require.Contains(t, lines[0], tt.wantErr)
		})
	}
	require.False(t, schemaExists(t, dbURL, "ledger"), "a refused start touches nothing")

	// With the switch it starts, on the built-in development secret.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	cmd := exec.Command(bin)
	cmd.Env = append(aloneEnv(dbURL, addr), "TALLY_ENV=development")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	conn, err := rpcclient.Dial(addr, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
			exited <- err
			return true // reported below
		default:
		}
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 60*time.Second, 50*time.Millisecond)
	select {
	case err := <-exited:
		require.Fail(t, "the ledger exited in development", "%v: %s", err, logs.String())
	default:
	}
	devToken, err := auth.Mint([]byte(server.DevJWTSecret), auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}, time.Hour)
	require.NoError(t, err)
	_, err = ledgerv1.NewLedgerServiceClient(conn).GetBalance(auth.OutgoingContext(t.Context(), devToken), &ledgerv1.GetBalanceRequest{OrgId: "acme"})
	require.NoError(t, err, "development tokens work in development")
}

// aloneEnv is the environment of a ledger started alone: no TALLY_* but its own addresses.
func aloneEnv(dbURL, addr string) []string {
	env := []string{"DATABASE_URL=" + dbURL, "TALLY_LEDGER_GRPC_ADDR=" + addr, "TALLY_PRICING_ADDR=127.0.0.1:1"}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" || k == "HOME" || k == "TMPDIR" {
			env = append(env, kv)
		}
	}
	return env
}

// schemaExists reports whether the database has schema name.
func schemaExists(t *testing.T, dbURL, name string) bool {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var ok bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)", name).Scan(&ok))
	return ok
}

// TestAttackProductionIdentity runs the ledger in production identity mode against a real OIDC
// provider (RS256 and ES256 keys served as a JWKS, client credentials for the ledger's own
// identity) and attacks it: forged, algorithm-confused, unsigned, foreign-issuer and
// foreign-audience tokens, a storm of made-up key ids and a key removed from the JWKS — each
// refused with a plain Unauthenticated, the JWKS fetched at most once per MinRefetch, nothing
// written.
func TestAttackProductionIdentity(t *testing.T) {
	t.Parallel()
	idp := authtest.New(t)
	idp.AddClient("ledger", "ledger-secret", "ledger")
	const minRefetch = 100 * time.Millisecond
	l := ledgertest.Start(t, ledgertest.Options{Auth: &server.AuthConfig{
		JWKSURL: idp.JWKSURL(), Issuer: idp.Issuer, Audience: authtest.Audience, HTTPClient: idp.Client(),
		JWKSRefresh: 200 * time.Millisecond, JWKSMinRefetch: minRefetch,
		OAuthClientID: "ledger", OAuthClientSecret: "ledger-secret",
	}})
	opsClaims := auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}
	ops := l.Client(t, idp.Token(t, opsClaims))
	require.Zero(t, nanos(t, balance(t, ops, "acme").GetBalance()), "a genuine token is accepted")

	attacks := tokenAttacks(t, idp, opsClaims)
	for name, tok := range attacks {
		t.Run(name, func(t *testing.T) {
			for rpc, err := range writeAttempts(t, l.Client(t, tok)) {
				require.Equal(t, codes.Unauthenticated.String(), status.Code(err).String(), "%s: %v", rpc, err)
				require.Equal(t, "invalid token", status.Convert(err).Message(), rpc)
			}
		})
	}

	t.Run("made-up key ids cannot force JWKS fetches", func(t *testing.T) {
		requireFewJWKSFetches(t, l, idp, attacks[forgedAttack], minRefetch)
	})

	t.Run("a removed key stops being accepted, also for tokens already seen", func(t *testing.T) {
		seen := idp.Sign(t, "rs-1", idp.Claims(opsClaims, time.Hour))
		c := l.Client(t, seen)
		balance(t, c, "acme") // verified and remembered by the ledger's token cache
		idp.RemoveKey("rs-1")
		require.Eventually(t, func() bool {
			_, err := c.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: "acme"})
			return status.Code(err) == codes.Unauthenticated
		}, 10*time.Second, 20*time.Millisecond, "refused within the refresh interval")
		for rpc, err := range writeAttempts(t, c) {
			require.Equal(t, codes.Unauthenticated.String(), status.Code(err).String(), "%s: %v", rpc, err)
		}
		balance(t, ops, "acme") // tokens of the remaining key still work
	})

	require.Zero(t, countRows(t, l.DatabaseURL, "ledger.transactions"), "nothing was written")
	require.Zero(t, countRows(t, l.DatabaseURL, "ledger.holds"), "nothing was written")
}

// forgedAttack names the token of tokenAttacks signed by another provider's key under a kid
// the ledger's provider publishes.
const forgedAttack = "forged with another key under a published kid"

// tokenAttacks are tokens the ledger must refuse with a plain Unauthenticated, by attack.
func tokenAttacks(t *testing.T, idp *authtest.Provider, opsClaims auth.Claims) map[string]string {
	t.Helper()
	_, rsKey := idp.Key("rs-1")
	rsPub := rsKey.Public().(*rsa.PublicKey)
	forgeKey := authtest.New(t) // another provider's keys: same kids, different secrets
	claims := idp.Claims(opsClaims, time.Hour)
	foreignIss := idp.Claims(opsClaims, time.Hour)
	foreignIss["iss"] = forgeKey.Issuer
	foreignAud := idp.Claims(opsClaims, time.Hour)
	foreignAud["aud"] = "another-api"
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	confused.Header["kid"] = "rs-1"
	confusedTok, err := confused.SignedString(x509.MarshalPKCS1PublicKey(rsPub))
	require.NoError(t, err)
	unsigned := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	unsigned.Header["kid"] = "es-1"
	unsignedTok, err := unsigned.SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	return map[string]string{
		forgedAttack: forgeKey.Sign(t, "es-1", claims),
		"HS256 with the RSA public key as secret": confusedTok,
		"alg none":          unsignedTok,
		"another issuer":    idp.Sign(t, "es-1", foreignIss),
		"another audience":  idp.Sign(t, "rs-1", foreignAud),
		"case-folded roles": idp.Sign(t, "es-1", mapWith(idp.Claims(auth.Claims{Subject: "mallory"}, time.Hour), "ROLES", []string{"ops"})),
		"a year-long token": idp.Sign(t, "es-1", idp.Claims(opsClaims, 365*24*time.Hour)),
	}
}

// requireFewJWKSFetches sends 100 copies of the forged token's body under made-up key ids: all
// are refused, and the JWKS is fetched at most once per minRefetch.
func requireFewJWKSFetches(t *testing.T, l *ledgertest.Ledger, idp *authtest.Provider, forged string, minRefetch time.Duration) {
	t.Helper()
	anon := l.Client(t, "")
	body := strings.SplitN(forged, ".", 2)[1]
	before, start := idp.JWKSFetches(), time.Now()
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			header := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"alg":"ES256","kid":"made-up-%d"}`, i))
			ctx := auth.OutgoingContext(t.Context(), header+"."+body)
			_, err := anon.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: "acme"})
			if status.Code(err) == codes.Unauthenticated && status.Convert(err).Message() == "invalid token" {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 100, refused.Load())
	// The periodic refresh (every 200ms) fetches too: allow it on top of the unknown-kid fetches.
	elapsed := time.Since(start)
	fetches := idp.JWKSFetches() - before
	require.LessOrEqual(t, fetches, int64(elapsed/minRefetch)+1, "100 made-up kids in %s caused %d JWKS fetches", elapsed, fetches)
}

// mapWith returns m with k set to v.
func mapWith(m jwt.MapClaims, k string, v any) jwt.MapClaims {
	m[k] = v
	return m
}
