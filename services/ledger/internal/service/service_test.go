package service_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/services/ledger/internal/service"
)

func TestLoadFaultSettings(t *testing.T) {
	t.Parallel()
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"DATABASE_URL":     "postgres://localhost/tally",
			"TALLY_ENV":        "development",
			"TALLY_JWT_SECRET": "a-test-secret-that-is-long-enough-0123456789",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		c, err := service.Load(config.FromMap(base(nil)))
		require.NoError(t, err)
		require.Equal(t, 5*time.Second, c.DBTimeout)
		require.Equal(t, 2*time.Second, c.CommitRetryFor)
		require.Equal(t, 50*time.Millisecond, c.RedisTimeout)
		require.Equal(t, time.Minute, c.BalanceCacheTTL)
		require.Equal(t, 65536, c.BalanceCacheQueue)
		require.Equal(t, 100*time.Millisecond, c.EpochInterval)
		require.Equal(t, 250*time.Millisecond, c.EpochMaxAge)
		require.Equal(t, 2*time.Second, c.ReplicaTimeout)
		require.Equal(t, 100, c.AccessLogSample)
	})
	t.Run("set", func(t *testing.T) {
		t.Parallel()
		c, err := service.Load(config.FromMap(base(map[string]string{
			"TALLY_LEDGER_DB_TIMEOUT": "2s", "TALLY_COMMIT_RETRY_FOR": "10s", "TALLY_REDIS_TIMEOUT": "20ms",
			"TALLY_BALANCE_CACHE_TTL": "5m", "TALLY_BALANCE_CACHE_QUEUE": "100", "TALLY_BALANCE_CACHE_EPOCH_INTERVAL": "50ms",
			"TALLY_BALANCE_CACHE_EPOCH_MAX_AGE": "120ms", "TALLY_LEDGER_REPLICA_TIMEOUT": "1s", "TALLY_LEDGER_ACCESS_LOG_SAMPLE": "1",
		})))
		require.NoError(t, err)
		require.Equal(t, 2*time.Second, c.DBTimeout)
		require.Equal(t, 10*time.Second, c.CommitRetryFor)
		require.Equal(t, 20*time.Millisecond, c.RedisTimeout)
		require.Equal(t, 5*time.Minute, c.BalanceCacheTTL)
		require.Equal(t, 100, c.BalanceCacheQueue)
		require.Equal(t, 50*time.Millisecond, c.EpochInterval)
		require.Equal(t, 120*time.Millisecond, c.EpochMaxAge)
		require.Equal(t, time.Second, c.ReplicaTimeout)
		require.Equal(t, 1, c.AccessLogSample)
	})
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"zero timeout", map[string]string{"TALLY_REDIS_TIMEOUT": "0s"}, "TALLY_REDIS_TIMEOUT"},
		{"negative ttl", map[string]string{"TALLY_BALANCE_CACHE_TTL": "-1s"}, "TALLY_BALANCE_CACHE_TTL"},
		{"empty queue", map[string]string{"TALLY_BALANCE_CACHE_QUEUE": "0"}, "TALLY_BALANCE_CACHE_QUEUE"},
		{"reading kept shorter than it is refreshed", map[string]string{"TALLY_BALANCE_CACHE_EPOCH_MAX_AGE": "50ms"}, "TALLY_BALANCE_CACHE_EPOCH_MAX_AGE"},
		{"replica timeout within a reading's age", map[string]string{"TALLY_LEDGER_REPLICA_TIMEOUT": "200ms"}, "TALLY_LEDGER_REPLICA_TIMEOUT"},
		{"not a duration", map[string]string{"TALLY_LEDGER_DB_TIMEOUT": "soon"}, "TALLY_LEDGER_DB_TIMEOUT"},
		{"no access-log sampling below one", map[string]string{"TALLY_LEDGER_ACCESS_LOG_SAMPLE": "0"}, "TALLY_LEDGER_ACCESS_LOG_SAMPLE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := service.Load(config.FromMap(base(tc.env)))
			require.ErrorContains(t, err, tc.want)
		})
	}
}
