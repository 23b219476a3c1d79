package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/server"
)

type runCase struct {
	name        string
	args        []string
	env         string
	extraEnv    map[string]string
	want        auth.Claims
	wantWarning bool
	wantErr     string
}

func TestRun(t *testing.T) {
	const secret = "a-test-secret-of-32-bytes-length"
	tests := []runCase{
		{
			name: "member with defaults",
			args: []string{"-org", "acme", "-sub", "user-1", "-email", "a@b.c", "-name", "Ada"},
			env:  secret,
			want: auth.Claims{Subject: "user-1", OrgID: "acme", Email: "a@b.c", Name: "Ada", Roles: []auth.Role{auth.RoleMember}},
		},
		{
			name: "several roles",
			args: []string{"-org", "acme", "-role", "member, admin", "-sub", "user-1", "-ttl", "1h"},
			env:  secret,
			want: auth.Claims{Subject: "user-1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember, auth.RoleAdmin}},
		},
		{
			name: "service identity",
			args: []string{"-service", "payments"},
			env:  secret,
			want: auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}},
		},
		{
			name: "service with extra role",
			args: []string{"-service", "ops-bot", "-role", "ops"},
			env:  secret,
			want: auth.Claims{Subject: "service:ops-bot", Roles: []auth.Role{auth.RoleService, auth.RoleOps}},
		},
		{
			name:        "default secret warns",
			args:        []string{"-sub", "user-1"},
			want:        auth.Claims{Subject: "user-1", Roles: []auth.Role{auth.RoleMember}},
			wantWarning: true,
		},
		{name: "missing subject", args: []string{"-org", "acme"}, env: secret, wantErr: "-sub or -service is required"},
		{name: "unknown role", args: []string{"-sub", "u", "-role", "root"}, env: secret, wantErr: `unknown role "root"`},
		{name: "sub with service", args: []string{"-sub", "u", "-service", "payments"}, env: secret, wantErr: "mutually exclusive"},
		{name: "short secret", args: []string{"-sub", "u"}, env: "short", wantErr: "at least 32 bytes"},
		{name: "ttl above the maximum lifetime", args: []string{"-sub", "u", "-ttl", "25h"}, env: secret, wantErr: "exceeds the maximum token lifetime 24h0m0s"},
		{
			name: "maximum lifetime raised", args: []string{"-sub", "u", "-ttl", "48h"}, env: secret,
			extraEnv: map[string]string{maxLifetimeEnv: "72h"},
			want:     auth.Claims{Subject: "u", Roles: []auth.Role{auth.RoleMember}},
		},
		{name: "bad maximum lifetime", args: []string{"-sub", "u"}, env: secret, extraEnv: map[string]string{maxLifetimeEnv: "a day"}, wantErr: "not a positive duration"},
		{name: "bad ttl", args: []string{"-sub", "u", "-ttl", "-1h"}, env: secret, wantErr: "ttl must be positive"},
		{name: "stray argument", args: []string{"-sub", "u", "extra"}, env: secret, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t) })
	}
}

// check runs the command with the case's arguments and environment and verifies its token.
func (tt runCase) check(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(key string) string {
		if key == secretEnv {
			return tt.env
		}
		return tt.extraEnv[key]
	}
	err := run(tt.args, &stdout, &stderr, getenv)
	if tt.wantErr != "" {
		require.ErrorContains(t, err, tt.wantErr)
		return
	}
	require.NoError(t, err)
	require.Equal(t, tt.wantWarning, strings.Contains(stderr.String(), "warning"), "stderr: %s", stderr.String())

	key := tt.env
	if key == "" {
		key = server.DevJWTSecret
	}
	v, err := auth.NewHS256Verifier([]byte(key), auth.WithMaxLifetime(72*time.Hour))
	require.NoError(t, err)
	got, err := v.Verify(t.Context(), strings.TrimSpace(stdout.String()))
	require.NoError(t, err)
	require.True(t, got.ExpiresAt.After(time.Now()), "the token carries a future exp")
	got.ExpiresAt = time.Time{}
	require.Equal(t, tt.want, got)
}

func TestRunIssuerAndAudience(t *testing.T) {
	const secret = "a-test-secret-of-32-bytes-length"
	env := map[string]string{secretEnv: secret, issuerEnv: "https://id.tally.test", audienceEnv: "tally"}
	var stdout, stderr bytes.Buffer
	require.NoError(t, run([]string{"-sub", "u"}, &stdout, &stderr, func(k string) string { return env[k] }))
	tok := strings.TrimSpace(stdout.String())

	v, err := auth.NewHS256Verifier([]byte(secret), auth.WithIssuer("https://id.tally.test"), auth.WithAudience("tally"))
	require.NoError(t, err)
	_, err = v.Verify(t.Context(), tok)
	require.NoError(t, err)
	other, err := auth.NewHS256Verifier([]byte(secret), auth.WithAudience("another"))
	require.NoError(t, err)
	_, err = other.Verify(t.Context(), tok)
	require.ErrorContains(t, err, "invalid audience")
}

func TestRunTokenExpiresAfterTTL(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == secretEnv {
			return "a-test-secret-of-32-bytes-length"
		}
		return ""
	}
	require.NoError(t, run([]string{"-sub", "u", "-ttl", "1m"}, &stdout, &stderr, getenv))

	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	v, err := auth.NewHS256Verifier([]byte("a-test-secret-of-32-bytes-length"), auth.WithClock(later))
	require.NoError(t, err)
	_, err = v.Verify(t.Context(), strings.TrimSpace(stdout.String()))
	require.ErrorContains(t, err, "expired")
}
