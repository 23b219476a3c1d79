package localstack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestStartPostgresReusesCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "pg")

	// First start: initdb, serve, create the tally database.
	pg, err := StartPostgres(ctx, PostgresConfig{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Stop(context.Background()) })
	require.Equal(t, dir, pg.Dir())
	require.Equal(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/tally?sslmode=disable", pg.Port()), pg.URL())
	require.Equal(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port()), pg.AdminURL())
	if os.Geteuid() == 0 {
		info, err := os.Stat(dir)
		require.NoError(t, err)
		tools, err := findPGTools()
		require.NoError(t, err)
		require.Equal(t, uint32(tools.uid), info.Sys().(*syscall.Stat_t).Uid, "data dir must belong to postgres")
	}

	execSQL(ctx, t, pg.URL(), "CREATE TABLE marker (v text)", "INSERT INTO marker VALUES ('kept')")
	require.Equal(t, "off", queryString(ctx, t, pg.URL(), "SHOW fsync"))
	require.Equal(t, "200", queryString(ctx, t, pg.URL(), "SHOW max_connections"))
	require.Equal(t, "postgres", queryString(ctx, t, pg.URL(), "SELECT current_user"))
	firstPort := pg.Port()

	require.NoError(t, pg.Stop(ctx))
	require.NoError(t, pg.Stop(ctx), "second Stop is a no-op")
	_, err = pgx.Connect(ctx, pg.URL())
	require.Error(t, err, "server must be down after Stop")

	// A pid file left by a killed run must not prevent the next start.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte("2147483000\n"+dir+"\n"), 0o600))

	// Second start: the existing cluster and its data are reused, on the
	// previous port since it is free again, and durability follows the config.
	pg2, err := StartPostgres(ctx, PostgresConfig{Dir: dir, Durable: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg2.Stop(context.Background()) })
	require.Equal(t, firstPort, pg2.Port())
	require.Equal(t, "kept", queryString(ctx, t, pg2.URL(), "SELECT v FROM marker"))
	require.Equal(t, "on", queryString(ctx, t, pg2.URL(), "SHOW fsync"))

	// A crash (immediate stop) and a start on the same port: committed data survives recovery.
	execSQL(ctx, t, pg2.URL(), "INSERT INTO marker VALUES ('committed before the crash')")
	require.True(t, pg2.Running())
	require.NoError(t, pg2.StopImmediate(ctx))
	require.False(t, pg2.Running())
	_, err = pgx.Connect(ctx, pg2.URL())
	require.Error(t, err, "server must be down after StopImmediate")
	require.NoError(t, pg2.StopImmediate(ctx), "a stopped server stays stopped")
	require.NoError(t, pg2.Start(ctx))
	require.Equal(t, firstPort, pg2.Port())
	require.Equal(t, "2", queryString(ctx, t, pg2.URL(), "SELECT count(*)::text FROM marker"))
	require.NoError(t, pg2.Stop(ctx))
}

func TestPostgresRestartKeepsPortAndData(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, PostgresConfig{Dir: filepath.Join(t.TempDir(), "pg")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Stop(context.Background()) })
	execSQL(ctx, t, pg.URL(), "CREATE TABLE marker (v text)", "INSERT INTO marker VALUES ('kept')")
	port := pg.Port()

	require.NoError(t, pg.Stop(ctx))
	_, err = pgx.Connect(ctx, pg.URL())
	require.Error(t, err, "server must be down after Stop")
	require.NoError(t, pg.Restart(ctx), "Restart starts a stopped server")
	require.Equal(t, port, pg.Port())
	require.Equal(t, "kept", queryString(ctx, t, pg.URL(), "SELECT v FROM marker"))

	require.NoError(t, pg.Restart(ctx), "Restart stops a running server first")
	require.Equal(t, "kept", queryString(ctx, t, pg.URL(), "SELECT v FROM marker"))
}

func TestStartPostgresRejectsForeignDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644))

	_, err := StartPostgres(t.Context(), PostgresConfig{Dir: dir})
	require.ErrorContains(t, err, "holds no postgres cluster")
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign only
	}{
		{"15", "9.6", 1},
		{"9.6", "15", -1},
		{"16", "16", 0},
		{"9.6", "9.5", 1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			got := compareVersions(tt.a, tt.b)
			switch {
			case tt.want > 0:
				require.Positive(t, got)
			case tt.want < 0:
				require.Negative(t, got)
			default:
				require.Zero(t, got)
			}
		})
	}
}

func execSQL(ctx context.Context, t *testing.T, url string, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, s := range stmts {
		_, err := conn.Exec(ctx, s)
		require.NoError(t, err, s)
	}
}

func queryString(ctx context.Context, t *testing.T, url, query string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var s string
	require.NoError(t, conn.QueryRow(ctx, query).Scan(&s))
	return s
}
