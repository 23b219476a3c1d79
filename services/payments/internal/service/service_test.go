package service

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	cfg, err := Load(config.FromMap(map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development"}))
	require.NoError(t, err)
	require.Equal(t, ":9093", cfg.GRPCAddr)
	require.Equal(t, ":8093", cfg.HTTPAddr)
	require.Equal(t, "http://localhost:8093", cfg.PublicURL)
	require.True(t, cfg.TestMode, "development without a Stripe key runs the test-mode checkout")
	require.Equal(t, DevWebhookSecret, cfg.StripeWebhookSecret)
	require.Equal(t, "http://localhost:8080/v1/webhooks/stripe", cfg.WebhookURL)
	require.Equal(t, 5*money.Nanos(money.NanosPerUnit), cfg.TopUpMin)
	require.Equal(t, 10_000*money.Nanos(money.NanosPerUnit), cfg.TopUpMax)
	require.Equal(t, payment.DefaultMaxRequestAmount, cfg.MaxRequestAmount)
	require.Equal(t, 5*time.Minute, cfg.ReconcileInterval)
	require.Equal(t, server.DevJWTSecret, cfg.Auth.JWTSecret)
	require.Equal(t, "http://localhost:8080", cfg.ConsoleURL)
	require.Equal(t, "http://localhost:8080/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}", cfg.SuccessURL())
	require.Equal(t, "http://localhost:8080/billing?checkout=cancelled", cfg.CancelURL())
	require.Equal(t, payment.DefaultCheckoutExpiry, cfg.CheckoutExpiry)
	require.Equal(t, config.Period{Months: 3}, cfg.CreditValidity)
	require.Nil(t, cfg.TopUpPresets, "the defaults that fit the limits")
	require.Equal(t, []money.Nanos{10e9, 25e9, 50e9, 100e9}, cfg.withDefaults().TopUpPresets)

	cfg, err = Load(config.FromMap(map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development",
		"TALLY_CONSOLE_URL": "https://console.tally.test/", "TALLY_TOPUP_PRESETS": "20, 50,100.5", "TALLY_CHECKOUT_EXPIRY": "30m"}))
	require.NoError(t, err)
	require.Equal(t, "https://console.tally.test/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}", cfg.SuccessURL())
	require.Equal(t, []money.Nanos{20e9, 50e9, 100_500_000_000}, cfg.TopUpPresets)
	require.Equal(t, 30*time.Minute, cfg.CheckoutExpiry)
	require.Equal(t, []money.Nanos{200e9, 10_000e9}, defaultPresets(200e9, 10_000e9), "limits above the defaults")

	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"no database", map[string]string{"TALLY_ENV": "development"}},
		{"stripe key without webhook secret", map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development", "STRIPE_SECRET_KEY": "sk_test_1"}},
		{"bad minimum", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_TOPUP_MIN": "five"}},
		{"max below min", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_TOPUP_MIN": "50", "TALLY_TOPUP_MAX": "10"}},
		{"bad interval", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_RECONCILE_INTERVAL": "often"}},
		{"bad request maximum", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_MAX_REQUEST_AMOUNT": "1e6"}},
		{"zero request maximum", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_MAX_REQUEST_AMOUNT": "0"}},
		{"top-up maximum above the request maximum", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y",
			"TALLY_MAX_REQUEST_AMOUNT": "100", "TALLY_TOPUP_MAX": "200"}},
		{"bad test mode", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", TestModeKey: "sometimes"}},
		{"relative console URL", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_CONSOLE_URL": "/billing"}},
		{"plain http console in production", map[string]string{"DATABASE_URL": "postgres://x/y", TestModeKey: "true",
			"TALLY_CONSOLE_URL": "http://console.tally.test"}},
		{"preset above the maximum", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_TOPUP_PRESETS": "10,20000"}},
		{"presets not ascending", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_TOPUP_PRESETS": "50,10"}},
		{"bad preset", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_TOPUP_PRESETS": "ten"}},
		{"checkout expiry below Stripe's minimum", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_CHECKOUT_EXPIRY": "10m"}},
		{"checkout expiry above Stripe's maximum", map[string]string{"TALLY_ENV": "development", "DATABASE_URL": "postgres://x/y", "TALLY_CHECKOUT_EXPIRY": "25h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(config.FromMap(tc.env))
			require.Error(t, err)
		})
	}
}

// TestLoadStripeModes is the fail-closed rule: outside test mode both Stripe secrets are
// required, the public development webhook secret is refused, and test mode is the default only
// in development without a Stripe key.
func TestLoadStripeModes(t *testing.T) {
	t.Parallel()
	const db = "postgres://x/y"
	for _, tc := range []struct {
		name     string
		env      map[string]string
		testMode bool
		err      string
	}{
		{name: "production without secrets", env: map[string]string{},
			err: "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required"},
		{name: "production with a key only", env: map[string]string{"STRIPE_SECRET_KEY": "sk_live_1"},
			err: "STRIPE_WEBHOOK_SECRET is required when STRIPE_SECRET_KEY is set"},
		{name: "production with a webhook secret only", env: map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_1"},
			err: "STRIPE_SECRET_KEY is required"},
		{name: "production with the development webhook secret", env: map[string]string{"STRIPE_SECRET_KEY": "sk_live_1",
			"STRIPE_WEBHOOK_SECRET": DevWebhookSecret}, err: "must not be the public development secret"},
		{name: "production with both secrets", env: map[string]string{"STRIPE_SECRET_KEY": "sk_live_1", "STRIPE_WEBHOOK_SECRET": "whsec_1"}},
		{name: "production asking for test mode", env: map[string]string{TestModeKey: "true"}, testMode: true},
		{name: "test mode with a key", env: map[string]string{TestModeKey: "true", "STRIPE_SECRET_KEY": "sk_test_1"},
			err: "exclude each other"},
		{name: "development without secrets", env: map[string]string{"TALLY_ENV": "development"}, testMode: true},
		{name: "development with both secrets", env: map[string]string{"TALLY_ENV": "development", "STRIPE_SECRET_KEY": "sk_test_1",
			"STRIPE_WEBHOOK_SECRET": "whsec_1"}},
		{name: "development with a key only", env: map[string]string{"TALLY_ENV": "development", "STRIPE_SECRET_KEY": "sk_test_1"},
			err: "STRIPE_WEBHOOK_SECRET is required when STRIPE_SECRET_KEY is set"},
		{name: "development refusing test mode", env: map[string]string{"TALLY_ENV": "development", TestModeKey: "false"},
			err: "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required"},
		{name: "unknown environment", env: map[string]string{"TALLY_ENV": "staging", TestModeKey: "true"}, err: "TALLY_ENV"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"DATABASE_URL": db, "TALLY_JWT_SECRET": "a-production-secret-of-at-least-32-bytes"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := Load(config.FromMap(env))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.testMode, cfg.TestMode)
			if cfg.TestMode {
				require.Equal(t, DevWebhookSecret, cfg.StripeWebhookSecret)
			} else {
				require.Equal(t, "whsec_1", cfg.StripeWebhookSecret)
			}
		})
	}
}

// TestLoadRetrySettings reads the retry worker's settings, the ones the fault suite sets to drive
// it fast, and refuses combinations that would leave money in limbo (no worker) or let a lease
// lapse under work still in progress.
func TestLoadRetrySettings(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://x/y", "TALLY_ENV": "development"}
	cfg, err := Load(config.FromMap(base))
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, cfg.RetryInterval)
	require.Equal(t, 5*time.Second, cfg.RetryBackoff)
	require.Equal(t, 5*time.Minute, cfg.RetryMaxBackoff)
	require.Equal(t, 2*time.Minute, cfg.WorkLease)
	require.Equal(t, 10*time.Second, cfg.LedgerTimeout)
	require.Equal(t, 30*time.Second, cfg.StripeTimeout)

	for _, tc := range []struct {
		name string
		env  map[string]string
		err  string
	}{
		{name: "fast, as the fault suite runs it", env: map[string]string{"TALLY_PAYMENTS_RETRY_INTERVAL": "100ms",
			"TALLY_PAYMENTS_RETRY_BACKOFF": "100ms", "TALLY_PAYMENTS_RETRY_MAX_BACKOFF": "1s", "TALLY_PAYMENTS_WORK_LEASE": "5s",
			"TALLY_PAYMENTS_LEDGER_TIMEOUT": "1s", "TALLY_STRIPE_TIMEOUT": "2s"}},
		{name: "no retry worker", env: map[string]string{"TALLY_PAYMENTS_RETRY_INTERVAL": "0s"}, err: "cannot be turned off"},
		{name: "no backoff", env: map[string]string{"TALLY_PAYMENTS_RETRY_BACKOFF": "0s"}, err: "0 < backoff <= max"},
		{name: "maximum below the backoff", env: map[string]string{"TALLY_PAYMENTS_RETRY_BACKOFF": "10s",
			"TALLY_PAYMENTS_RETRY_MAX_BACKOFF": "1s"}, err: "0 < backoff <= max"},
		{name: "no ledger deadline", env: map[string]string{"TALLY_PAYMENTS_LEDGER_TIMEOUT": "0s"}, err: "must be positive"},
		{name: "a lease shorter than the work", env: map[string]string{"TALLY_PAYMENTS_WORK_LEASE": "40s"},
			err: "TALLY_PAYMENTS_WORK_LEASE (40s) must exceed"},
		{name: "not a duration", env: map[string]string{"TALLY_PAYMENTS_RETRY_INTERVAL": "often"}, err: "TALLY_PAYMENTS_RETRY_INTERVAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := Load(config.FromMap(env))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 100*time.Millisecond, cfg.RetryInterval)
			require.Equal(t, 5*time.Second, cfg.WorkLease)
		})
	}
}
