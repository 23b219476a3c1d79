package testenv_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

func TestPostgresURLGivesFreshDatabases(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	first, second := testenv.PostgresURL(t), testenv.PostgresURL(t)
	require.NotEqual(t, first, second)

	names := map[string]bool{}
	for _, u := range []string{first, second} {
		conn, err := pgx.Connect(ctx, u)
		require.NoError(t, err)
		var name string
		var tables int
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&name))
		require.NoError(t, conn.QueryRow(ctx,
			"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables))
		require.Zero(t, tables, "database %s must be empty", name)
		_, err = conn.Exec(ctx, "CREATE TABLE t (id int)")
		require.NoError(t, err)
		require.NoError(t, conn.Close(ctx))
		names[name] = true
	}
	require.Len(t, names, 2)
}

func TestPostgresURLDropsDatabaseAfterTest(t *testing.T) {
	var dbURL string
	t.Run("inner", func(t *testing.T) {
		dbURL = testenv.PostgresURL(t)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := pgx.Connect(ctx, dbURL)
	require.ErrorContains(t, err, "does not exist")
}

func TestPrivatePostgresCanBeStoppedAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	shared := testenv.PostgresURL(t)
	var private string
	t.Run("inner", func(t *testing.T) {
		pg := testenv.PrivatePostgres(t)
		private = pg.URL()
		require.NotEqual(t, shared, private)
		conn, err := pgx.Connect(ctx, private)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "CREATE TABLE kept (id int)")
		require.NoError(t, err)
		require.NoError(t, conn.Close(ctx))

		require.NoError(t, pg.Stop(ctx))
		// The shared cluster is untouched by the private one going down.
		conn, err = pgx.Connect(ctx, shared)
		require.NoError(t, err)
		require.NoError(t, conn.Close(ctx))

		require.NoError(t, pg.Restart(ctx))
		conn, err = pgx.Connect(ctx, private)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "SELECT * FROM kept")
		require.NoError(t, err, "the data survives the restart")
		require.NoError(t, conn.Close(ctx))
	})
	_, err := pgx.Connect(ctx, private)
	require.Error(t, err, "stopped when its test ends")
}

func TestRedisIsPrivate(t *testing.T) {
	a, b := testenv.Redis(t), testenv.Redis(t)
	require.NotEqual(t, a.URL(), b.URL())

	conn, err := net.DialTimeout("tcp", a.Addr(), 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprint(conn, "PING\r\n")
	require.NoError(t, err)
	buf := make([]byte, 7)
	_, err = io.ReadFull(conn, buf)
	require.NoError(t, err)
	require.Equal(t, "+PONG\r\n", string(buf))
}

func TestMailpitReceivesMail(t *testing.T) {
	mp := testenv.Mailpit(t)
	require.Same(t, mp, testenv.Mailpit(t), "shared per test binary")

	msg := "From: a@example.com\r\nTo: b@example.com\r\nSubject: hello testenv\r\n\r\nbody\r\n"
	require.NoError(t, smtp.SendMail(mp.SMTPAddr(), nil, "a@example.com", []string{"b@example.com"}, []byte(msg)))

	resp, err := http.Get(mp.HTTPURL() + "/api/v1/messages")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "hello testenv")
}

func TestStripeMockServesAPI(t *testing.T) {
	sm := testenv.StripeMock(t)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, sm.URL()+"/v1/customers", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk_test_123")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestStalledAcceptsAndNeverAnswers(t *testing.T) {
	t.Parallel()
	s := testenv.StartStalled(t)
	c, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", s.Addr)
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	<-s.Accepted
	require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "the server says nothing: %v", err)
}
