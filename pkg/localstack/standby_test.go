package localstack

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStandbyPromotion streams a synchronous standby from a primary, crashes the primary and
// promotes the standby: every committed row is there, it takes writes, and a multi-host URL with
// target_session_attrs=read-write (as the services are given) reaches the primary before and the
// promoted standby after.
func TestStandbyPromotion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	primary, err := StartPostgres(ctx, PostgresConfig{Dir: filepath.Join(dir, "a"), Durable: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	_, err = StartStandby(ctx, StandbyConfig{Dir: filepath.Join(dir, "x"), Primary: &Postgres{}, Synchronous: true})
	require.ErrorContains(t, err, "durable primary")
	standby, err := StartStandby(ctx, StandbyConfig{Dir: filepath.Join(dir, "b"), Primary: primary, Synchronous: true, Durable: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = standby.Stop(context.Background()) })

	inRecovery, err := standby.InRecovery(ctx)
	require.NoError(t, err)
	require.True(t, inRecovery)
	require.Equal(t, StandbyName, queryString(ctx, t, primary.URL(), "SHOW synchronous_standby_names"))
	both := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/tally?sslmode=disable&target_session_attrs=read-write",
		standby.Port(), primary.Port())
	require.Equal(t, fmt.Sprint(primary.Port()), queryString(ctx, t, both, "SELECT current_setting('port')"))

	execSQL(ctx, t, primary.URL(), "CREATE TABLE acked (n int)")
	for n := range 50 {
		execSQL(ctx, t, primary.URL(), fmt.Sprintf("INSERT INTO acked VALUES (%d)", n))
	}
	// A crash: no shutdown checkpoint, nothing more sent to the standby.
	require.NoError(t, primary.StopImmediate(ctx))
	require.NoError(t, standby.Promote(ctx))
	inRecovery, err = standby.InRecovery(ctx)
	require.NoError(t, err)
	require.False(t, inRecovery)
	require.Equal(t, "50", queryString(ctx, t, standby.URL(), "SELECT count(*) FROM acked"), "every synchronously committed row survived")
	execSQL(ctx, t, standby.URL(), "INSERT INTO acked VALUES (50)")
	require.Equal(t, fmt.Sprint(standby.Port()), queryString(ctx, t, both, "SELECT current_setting('port')"))
}
