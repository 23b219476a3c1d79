package service_test

import (
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/service"
	"github.com/tallyhq/tally/services/ledger/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var ledger = server.Service[service.Config]{
	Name: "ledger", Load: service.Load, Run: service.Run, Migrate: service.Migrate,
	GRPCAddr: func(c service.Config) string { return c.GRPCAddr },
}

func migrateEnv(url string, extra ...string) *config.Env {
	m := map[string]string{
		"DATABASE_URL": url, "TALLY_ENV": "development", "TALLY_LOG_LEVEL": "error",
		"TALLY_LEDGER_GRPC_ADDR": "127.0.0.1:0",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return config.FromMap(m)
}

// TestMigrateCommand runs `ledger migrate` on an empty database twice (the second run applies
// nothing), and checks the ledger started with TALLY_MIGRATE_ON_START=false refuses an
// unmigrated database, naming the migration it lacks.
func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresURL(t)
	names, err := fs.Glob(migrations.FS, "*.up.sql")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	first := strings.TrimSuffix(names[0], ".up.sql")

	cfg, err := service.Load(migrateEnv(url, "TALLY_MIGRATE_ON_START", "false"))
	require.NoError(t, err)
	require.True(t, cfg.SkipMigrations)
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = service.Run(t.Context(), cfg, lis, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.ErrorIs(t, err, pg.ErrNotMigrated)
	require.ErrorContains(t, err, "schema ledger lacks migration "+first)
	require.Equal(t, 1, ledger.Exec(t.Context(), nil, migrateEnv(url, "TALLY_MIGRATE_ON_START", "false"), io.Discard),
		"the service exits 1 on an unmigrated database")

	for run := range 2 {
		require.Equal(t, 0, ledger.Exec(t.Context(), []string{"migrate"}, migrateEnv(url), io.Discard), "run %d", run+1)
		conn, err := pgx.Connect(t.Context(), url)
		require.NoError(t, err)
		var applied int
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM ledger.schema_migrations").Scan(&applied))
		require.NoError(t, conn.Close(t.Context()))
		require.Equal(t, len(names), applied, "run %d", run+1)
	}
	pool, err := pg.Connect(t.Context(), url, "ledger", 1)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pg.CheckMigrated(t.Context(), pool, "ledger", migrations.FS))
}

// TestMigrateCommandLine: exit status 2 for an unknown argument or a bad configuration.
func TestMigrateCommandLine(t *testing.T) {
	t.Parallel()
	var stderr strings.Builder
	require.Equal(t, 2, ledger.Exec(t.Context(), []string{"migrat"}, migrateEnv("postgres://127.0.0.1:1/x"), &stderr))
	require.Contains(t, stderr.String(), `ledger: unknown arguments "migrat"; usage: ledger [migrate]`)
	stderr.Reset()
	require.Equal(t, 2, ledger.Exec(t.Context(), []string{"migrate"}, config.FromMap(map[string]string{"TALLY_ENV": "development"}), &stderr))
	require.Contains(t, stderr.String(), "DATABASE_URL")
	require.Equal(t, 1, ledger.Exec(t.Context(), []string{"migrate"}, migrateEnv("postgres://127.0.0.1:1/x?connect_timeout=2"), io.Discard),
		"unreachable database: the migrations fail")
}
