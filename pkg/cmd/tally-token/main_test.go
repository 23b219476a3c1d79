package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
)

func TestRun(t *testing.T) {
	const secret = "a-test-secret-of-32-bytes-length"
	tests := []struct {
		name        string
		args        []string
		env         string
		want        auth.Claims
		wantWarning bool
		wantErr     string
	}{
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
		{name: "short secret", args: []string{"-sub", "u"}, env: "short", wantErr: "at least 16 bytes"},
		{name: "bad ttl", args: []string{"-sub", "u", "-ttl", "-1h"}, env: secret, wantErr: "ttl must be positive"},
		{name: "stray argument", args: []string{"-sub", "u", "extra"}, env: secret, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			getenv := func(key string) string {
				require.Equal(t, secretEnv, key)
				return tt.env
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
				key = devSecret
			}
			v, err := auth.NewHS256Verifier([]byte(key))
			require.NoError(t, err)
			got, err := v.Verify(t.Context(), strings.TrimSpace(stdout.String()))
			require.NoError(t, err)
			require.True(t, got.ExpiresAt.After(time.Now()), "the token carries a future exp")
			got.ExpiresAt = time.Time{}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRunTokenExpiresAfterTTL(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "a-test-secret-of-32-bytes-length" }
	require.NoError(t, run([]string{"-sub", "u", "-ttl", "1m"}, &stdout, &stderr, getenv))

	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	v, err := auth.NewHS256Verifier([]byte("a-test-secret-of-32-bytes-length"), auth.WithClock(later))
	require.NoError(t, err)
	_, err = v.Verify(t.Context(), strings.TrimSpace(stdout.String()))
	require.ErrorContains(t, err, "expired")
}
