package service

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
)

func TestLoadWeb(t *testing.T) {
	t.Parallel()
	const key = "0123456789abcdef0123456789abcdef"
	oidc := map[string]string{"TALLY_OIDC_ISSUER": "https://idp.example.com", "TALLY_OIDC_CLIENT_ID": "console"}
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
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		signIn  bool
	}{
		{"production without a provider", nil, "", true},
		{"production with a provider and a key", with(oidc, "TALLY_SESSION_KEY", key), "", true},
		{"production with a provider, no key", oidc, "TALLY_SESSION_KEY (at least 32 random bytes) is required with TALLY_OIDC_ISSUER outside development", false},
		{"short key", with(oidc, "TALLY_SESSION_KEY", "short"), "TALLY_SESSION_KEY: session key must be at least 32 bytes", false},
		{"plain http issuer in production", with(oidc, "TALLY_SESSION_KEY", key, "TALLY_OIDC_ISSUER", "http://idp.example.com"), "TALLY_OIDC_ISSUER must be https outside development", true},
		{"unknown forwarded token", with(oidc, "TALLY_SESSION_KEY", key, "TALLY_OIDC_FORWARD_TOKEN", "refresh_token"), "TALLY_OIDC_FORWARD_TOKEN must be access_token or id_token", true},
		{"no client id", map[string]string{"TALLY_OIDC_ISSUER": "https://idp.example.com", "TALLY_SESSION_KEY": key}, "TALLY_OIDC_CLIENT_ID is required", true},
		{"development", map[string]string{"TALLY_ENV": "development"}, "", true},
		{"development with a provider over http", with(oidc, "TALLY_ENV", "development", "TALLY_OIDC_ISSUER", "http://127.0.0.1:8099/oidc"), "", true},
		{"development with a short secret", map[string]string{"TALLY_ENV": "development", "TALLY_JWT_SECRET": "short"}, "TALLY_JWT_SECRET) must be at least 32 bytes", false},
		{"bad CORS origin", map[string]string{"TALLY_CORS_ORIGINS": "localhost:5173"}, "TALLY_CORS_ORIGINS", true},
		{"bad console URL", map[string]string{"TALLY_CONSOLE_URL": "localhost"}, "TALLY_CONSOLE_URL", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := config.FromMap(tt.env)
			wc := loadWeb(env, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if tt.wantErr == "" {
				require.NoError(t, env.Err())
				require.NotNil(t, wc.signIn)
				return
			}
			require.ErrorContains(t, env.Err(), tt.wantErr)
			require.Equal(t, 1, strings.Count(env.Err().Error(), tt.wantErr), "each problem is reported once")
			if !tt.signIn {
				require.Nil(t, wc.signIn)
			}
		})
	}
}
