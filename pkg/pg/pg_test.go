package pg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestOpenSetsTimeouts(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresURL(t)
	for _, tc := range []struct {
		name string
		opts pg.Options
		want string
	}{
		{"none by default", pg.Options{URL: url, Schema: "svc"}, "0"},
		{"statement timeout", pg.Options{URL: url, Schema: "svc", StatementTimeout: 1500 * time.Millisecond}, "1500ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := pg.Open(t.Context(), tc.opts)
			require.NoError(t, err)
			defer pool.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var got string
			require.NoError(t, pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&got))
			require.Equal(t, tc.want, got)
		})
	}

	// A statement over the timeout is cancelled by the server, and that counts as unavailable.
	pool, err := pg.Open(t.Context(), pg.Options{URL: url, Schema: "svc", StatementTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	defer pool.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = pool.Exec(ctx, "SELECT pg_sleep(5)")
	require.Error(t, err)
	require.True(t, pg.IsUnavailable(err), "%v", err)

	// Migrations are not bound by it (a migration may take long).
	require.NoError(t, pg.Migrate(t.Context(), pool, "svc", fstest.MapFS{
		"20260101000000_slow.up.sql": {Data: []byte("SELECT pg_sleep(0.2); CREATE TABLE t (id int)")},
	}))
	var after string
	require.NoError(t, pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&after))
	require.Equal(t, "50ms", after, "the migrations' connection gets its timeout back")
	require.NoError(t, pool.QueryRow(ctx, "SHOW idle_in_transaction_session_timeout").Scan(&after))
	require.Equal(t, "50ms", after, "and its idle-in-transaction timeout")
}

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	// A real connection attempt to a port nobody listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, refused := pgx.Connect(ctx, "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5")
	require.Error(t, refused)

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused", refused, true},
		{"wrapped connection refused", fmt.Errorf("reading account: %w", refused), true},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"server starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection exception class", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"out of memory", &pgconn.PgError{Code: "53200"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"lock timeout", &pgconn.PgError{Code: "55P03"}, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"connected to a standby", &pgconn.PgError{Code: "25006"}, true},
		{"short code", &pgconn.PgError{Code: "5"}, false},
		{"connect error", fmt.Errorf("q: %w", &pgconn.ConnectError{}), true},
		{"net error", fmt.Errorf("q: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), true},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"unique violation is the data's fault", &pgconn.PgError{Code: "23505"}, false},
		{"check violation is the data's fault", &pgconn.PgError{Code: "23514"}, false},
		{"syntax error is the code's fault", &pgconn.PgError{Code: "42601"}, false},
		{"connection lost mid-read", fmt.Errorf("writing ledger batch: %w", io.ErrUnexpectedEOF), true},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		{"own deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"no rows is an answer", pgx.ErrNoRows, false},
		{"any other error", errors.New("scanning account: cannot scan NULL"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, pg.IsUnavailable(tc.err), "%v", tc.err)
		})
	}
}

// TestCheckMigrated: a schema lacking a migration of the binary (none applied, or a newer one
// added) is refused with ErrNotMigrated naming the first missing one; MigrateDatabase applies them
// and a second run changes nothing.
func TestCheckMigrated(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresURL(t)
	pool, err := pg.Connect(t.Context(), url, "svc", 2)
	require.NoError(t, err)
	defer pool.Close()
	v1 := fstest.MapFS{"001_init.up.sql": {Data: []byte("CREATE TABLE items (id int PRIMARY KEY)")}}
	v2 := fstest.MapFS{"001_init.up.sql": v1["001_init.up.sql"], "002_more.up.sql": {Data: []byte("ALTER TABLE items ADD COLUMN name text")}}

	err = pg.CheckMigrated(t.Context(), pool, "svc", v1)
	require.ErrorIs(t, err, pg.ErrNotMigrated)
	require.ErrorContains(t, err, "schema svc lacks migration 001_init (1 of 1 missing)")
	require.NoError(t, pg.Prepare(t.Context(), pool, "svc", v1, true))
	require.NoError(t, pg.Prepare(t.Context(), pool, "svc", v1, false))
	err = pg.CheckMigrated(t.Context(), pool, "svc", v2)
	require.ErrorIs(t, err, pg.ErrNotMigrated)
	require.ErrorContains(t, err, "lacks migration 002_more (1 of 2 missing)")
	for range 2 {
		require.NoError(t, pg.MigrateDatabase(t.Context(), url, "svc", v2))
	}
	require.NoError(t, pg.CheckMigrated(t.Context(), pool, "svc", v2))
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM svc.schema_migrations").Scan(&n))
	require.Equal(t, 2, n)
}
