package service

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	cfg, err := Load(config.FromMap(map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development"}))
	require.NoError(t, err)
	require.Equal(t, ":9093", cfg.GRPCAddr)
	require.Equal(t, ":8093", cfg.HTTPAddr)
	require.Equal(t, "http://localhost:8093", cfg.PublicURL)
	require.Equal(t, DevWebhookSecret, cfg.StripeWebhookSecret)
	require.Equal(t, "http://localhost:8080/v1/webhooks/stripe", cfg.WebhookURL)
	require.Equal(t, 5*money.Nanos(money.NanosPerUnit), cfg.TopUpMin)
	require.Equal(t, 10_000*money.Nanos(money.NanosPerUnit), cfg.TopUpMax)
	require.Equal(t, 5*time.Minute, cfg.ReconcileInterval)
	require.Equal(t, server.DevJWTSecret, cfg.Auth.JWTSecret)

	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"no database", map[string]string{"TALLY_ENV": "development"}},
		{"stripe key without webhook secret", map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "STRIPE_SECRET_KEY": "sk_test_1"}},
		{"bad minimum", map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_TOPUP_MIN": "five"}},
		{"max below min", map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_TOPUP_MIN": "50", "TALLY_TOPUP_MAX": "10"}},
		{"bad interval", map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "TALLY_RECONCILE_INTERVAL": "often"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(config.FromMap(tc.env))
			require.Error(t, err)
		})
	}
}
