package service_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/notifications/internal/sender"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	t.Run("defaults point at a local mailpit", func(t *testing.T) {
		t.Parallel()
		c, err := service.Load(config.FromMap(map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development"}))
		require.NoError(t, err)
		require.Equal(t, ":9095", c.GRPCAddr)
		require.Equal(t, "localhost:9091", c.LedgerAddr)
		require.Equal(t, sender.SMTPConfig{Host: "localhost", Port: 1025, TLS: sender.TLSNone, From: "Tally <notifications@tally.localhost>", Timeout: 15 * time.Second}, c.SMTP)
		require.Equal(t, 7*24*time.Hour, c.ExpiryNotice)
		require.Equal(t, server.DevJWTSecret, c.Auth.JWTSecret)
		require.Equal(t, 2, c.SendWorkers)
		require.Equal(t, 2*time.Minute, c.ClaimLease)
	})
	t.Run("explicit SMTP", func(t *testing.T) {
		t.Parallel()
		c, err := service.Load(config.FromMap(map[string]string{
			"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_SMTP_HOST": "smtp.example.com", "TALLY_SMTP_PORT": "465", "TALLY_SMTP_TLS": "tls",
			"TALLY_SMTP_USERNAME": "u", "TALLY_SMTP_PASSWORD": "p", "TALLY_SMTP_FROM": "billing@example.com", "TALLY_NOTIFICATIONS_SEND_WORKERS": "0",
		}))
		require.NoError(t, err)
		require.Equal(t, sender.SMTPConfig{Host: "smtp.example.com", Port: 465, Username: "u", Password: "p", TLS: sender.TLSImplicit, From: "billing@example.com", Timeout: 15 * time.Second}, c.SMTP)
		require.Equal(t, 0, c.SendWorkers)
	})
	for name, env := range map[string]map[string]string{
		"missing database":              {"TALLY_ENV": "development"},
		"no secret":                     {"DATABASE_URL": "postgres://x/y"},
		"bad TLS mode":                  {"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_SMTP_TLS": "ssl"},
		"bad port":                      {"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_SMTP_PORT": "70000"},
		"negative workers":              {"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_NOTIFICATIONS_SEND_WORKERS": "-1"},
		"retry max < base":              {"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_NOTIFICATIONS_RETRY_BASE": "1m", "TALLY_NOTIFICATIONS_RETRY_MAX": "1s"},
		"unparsable number":             {"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_NOTIFICATIONS_MAX_ATTEMPTS": "many"},
		"lease below two SMTP timeouts": {"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_SMTP_TIMEOUT": "30s", "TALLY_NOTIFICATIONS_CLAIM_LEASE": "59s"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := service.Load(config.FromMap(env))
			require.Error(t, err)
		})
	}
}
