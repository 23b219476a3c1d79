package pg_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/pg"
)

// TestOpenFollowsPromotion opens a pool as the services do over a multi-host URL with
// target_session_attrs=read-write: it writes to the primary, and once the primary has crashed and
// its synchronous standby is promoted, the same pool writes to the promoted standby (its calls
// meanwhile fail as unavailable), where every write acknowledged before the crash is.
func TestOpenFollowsPromotion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	primary, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(dir, "primary"), Durable: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	standby, err := localstack.StartStandby(ctx, localstack.StandbyConfig{Dir: filepath.Join(dir, "standby"), Primary: primary,
		Synchronous: true, Durable: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = standby.Stop(context.Background()) })

	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
		primary.Port(), standby.Port(), localstack.DefaultDatabase)
	pool, err := pg.Open(ctx, pg.Options{URL: url, Schema: "svc", ConnectTimeout: 2 * time.Second, StatementTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `CREATE TABLE public.acked (n int)`)
	require.NoError(t, err)
	for n := range 20 {
		_, err := pool.Exec(ctx, `INSERT INTO public.acked VALUES ($1)`, n)
		require.NoError(t, err)
	}

	require.NoError(t, primary.StopImmediate(ctx))
	// No primary: the pool's calls fail as unavailable (the standby is read-only).
	_, err = pool.Exec(ctx, `INSERT INTO public.acked VALUES (-1)`)
	require.Error(t, err)
	require.True(t, pg.IsUnavailable(err), "%v", err)

	require.NoError(t, standby.Promote(ctx))
	var port string
	require.Eventually(t, func() bool {
		_, err := pool.Exec(ctx, `INSERT INTO public.acked VALUES (20)`)
		return err == nil
	}, time.Minute, 50*time.Millisecond, "the pool writes again after the promotion")
	require.NoError(t, pool.QueryRow(ctx, `SELECT current_setting('port')`).Scan(&port))
	require.Equal(t, fmt.Sprint(standby.Port()), port)
	var count int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM public.acked WHERE n >= 0`).Scan(&count))
	require.Equal(t, 21, count, "every acknowledged write is on the promoted standby")
}
