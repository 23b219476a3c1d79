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
	base := map[string]string{"DATABASE_URL": "postgres://localhost/tally", "TALLY_ENV": "development"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cfg, err := Load(config.FromMap(base))
	require.NoError(t, err)
	require.Equal(t, ":9094", cfg.GRPCAddr)
	require.Equal(t, time.Hour, cfg.BillingPeriod)
	require.Zero(t, cfg.Grace)
	require.Equal(t, "localhost:9091", cfg.LedgerAddr)
	require.Equal(t, "localhost:9092", cfg.PricingAddr)
	require.Empty(t, cfg.NotificationsAddr)
	require.Equal(t, server.DevJWTSecret, cfg.Auth.JWTSecret, "development signs the service's own tokens with the built-in secret")
	require.Equal(t, time.Minute, cfg.ClaimLease)

	cfg, err = Load(config.FromMap(with("TALLY_INSTANCE_BILLING_PERIOD", "1s", "TALLY_INSTANCE_GRACE", "2.5")))
	require.NoError(t, err)
	require.Equal(t, time.Second, cfg.BillingPeriod)
	require.Equal(t, money.Nanos(2_500_000_000), cfg.Grace)

	for name, env := range map[string]map[string]string{
		"no database":                {"TALLY_ENV": "development"},
		"production without secret":  with("TALLY_ENV", "production"),
		"negative grace":             with("TALLY_INSTANCE_GRACE", "-1"),
		"grace not a number":         with("TALLY_INSTANCE_GRACE", "lots"),
		"period below 1ms":           with("TALLY_INSTANCE_BILLING_PERIOD", "10us"),
		"period with nanoseconds":    with("TALLY_INSTANCE_BILLING_PERIOD", "1.0000001s"),
		"period not a duration":      with("TALLY_INSTANCE_BILLING_PERIOD", "hourly"),
		"poll interval not positive": with("TALLY_INSTANCE_POLL_INTERVAL", "0s"),
		"claim lease too short":      with("TALLY_INSTANCE_CLAIM_LEASE", "10s"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(config.FromMap(env))
			require.Error(t, err)
		})
	}
}
