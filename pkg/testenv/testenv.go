// Package testenv gives tests real servers (PostgreSQL, Redis, Mailpit,
// stripe-mock) started through package localstack.
//
// A test package that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// Servers shared by a test binary (the PostgreSQL cluster, Mailpit and
// stripe-mock) are started lazily on first use and stopped by Main; nothing is
// shared between test binaries. Each PostgresURL call gets its own fresh
// database and each Redis call its own server.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/pkg/localstack"
)

// DatabaseURLEnv names the environment variable holding the admin URL
// (postgres://...) of an existing server to use instead of a private cluster.
const DatabaseURLEnv = "TALLY_TEST_DATABASE_URL"

// startTimeout bounds starting a server.
const startTimeout = 2 * time.Minute

// shared holds the servers of this test binary. It is package state because
// test helpers receive only a testing.TB; Main stops everything in it.
var shared environment

// environment is the set of servers shared by the tests of one binary.
type environment struct {
	mainRunning atomic.Bool

	pgOnce   sync.Once
	pg       *localstack.Postgres // nil when DatabaseURLEnv is used
	pgDir    string
	pgAdmin  string
	pgErr    error
	mailOnce sync.Once
	mail     *localstack.Mailpit
	mailDir  string
	mailErr  error
	smOnce   sync.Once
	sm       *localstack.StripeMock
	smErr    error
	stopOnce sync.Once
}

// Main runs the tests of m and then stops the servers this test binary
// started. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	shared.mainRunning.Store(true)
	code := m.Run()
	if err := shared.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// PostgresURL returns the URL of a new, empty database for the calling test,
// dropped when the test ends. The server is $TALLY_TEST_DATABASE_URL when set,
// else a private non-durable cluster started once per test binary.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := shared.postgres(t)

	name := "test_" + randomHex(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: connecting to postgres: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(admin, name) })

	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dbURL
}

// PrivatePostgres starts a PostgreSQL cluster of the calling test's own (not the shared one), for
// tests that stop, restart or stall the server; it is stopped when the test ends. Its URL points
// at the "tally" database. Starting a cluster takes a few seconds: use PostgresURL unless the
// test needs to take the server down.
func PrivatePostgres(t testing.TB) *localstack.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "pg")
	pg, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: dir, Logger: logger()})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := pg.Stop(ctx); err != nil {
			t.Errorf("testenv: %v", err)
		}
		if pg.Dir() != dir {
			_ = os.RemoveAll(pg.Dir()) // fallback data dir
		}
	})
	return pg
}

// dropDatabase drops database name, ignoring errors: the cluster is thrown
// away at the end of the run anyway.
func dropDatabase(admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// Redis starts a private redis-server for the calling test and stops it when
// the test ends.
func Redis(t testing.TB) *localstack.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	r, err := localstack.StartRedis(ctx, localstack.RedisConfig{Dir: t.TempDir(), Logger: logger()})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return r
}

// RedisURL starts a private redis-server for the calling test and returns
// its URL.
func RedisURL(t testing.TB) string {
	t.Helper()
	return Redis(t).URL()
}

// Mailpit returns the Mailpit server of this test binary, starting it on
// first use. The binary must be in localstack.BinDir().
func Mailpit(t testing.TB) *localstack.Mailpit {
	t.Helper()
	shared.requireMain(t, "Mailpit")
	bin := requireBinary(t, "mailpit")
	shared.mailOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tally-testenv-mailpit-")
		if err != nil {
			shared.mailErr = fmt.Errorf("creating mailpit dir: %w", err)
			return
		}
		shared.mailDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared.mail, shared.mailErr = localstack.StartMailpit(ctx, localstack.MailpitConfig{Bin: bin, Dir: dir, Logger: logger()})
	})
	if shared.mailErr != nil {
		t.Fatalf("testenv: %v", shared.mailErr)
	}
	return shared.mail
}

// StripeMock returns the stripe-mock server of this test binary, starting it
// on first use. The binary must be in localstack.BinDir().
func StripeMock(t testing.TB) *localstack.StripeMock {
	t.Helper()
	shared.requireMain(t, "StripeMock")
	bin := requireBinary(t, "stripe-mock")
	shared.smOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared.sm, shared.smErr = localstack.StartStripeMock(ctx, localstack.StripeMockConfig{Bin: bin, Logger: logger()})
	})
	if shared.smErr != nil {
		t.Fatalf("testenv: %v", shared.smErr)
	}
	return shared.sm
}

// postgres returns the admin URL of the shared server, starting the private
// cluster on first use.
func (e *environment) postgres(t testing.TB) string {
	t.Helper()
	if admin := os.Getenv(DatabaseURLEnv); admin != "" {
		return admin
	}
	e.requireMain(t, "PostgresURL")
	e.pgOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tally-testenv-pg-")
		if err != nil {
			e.pgErr = fmt.Errorf("creating postgres dir: %w", err)
			return
		}
		e.pgDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		pg, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(dir, "data"), Logger: logger()})
		if err != nil {
			e.pgErr = err
			return
		}
		e.pg, e.pgAdmin = pg, pg.AdminURL()
	})
	if e.pgErr != nil {
		t.Fatalf("testenv: %v", e.pgErr)
	}
	return e.pgAdmin
}

// requireMain fails t when TestMain does not call Main, since the shared
// servers would then never be stopped.
func (e *environment) requireMain(t testing.TB, helper string) {
	t.Helper()
	if !e.mainRunning.Load() {
		t.Fatalf("testenv.%s needs TestMain to call testenv.Main: func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }", helper)
	}
}

// stop stops every shared server and removes its files.
func (e *environment) stop() error {
	var errs []error
	e.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if e.pg != nil {
			errs = append(errs, e.pg.Stop(ctx))
		}
		if e.mail != nil {
			errs = append(errs, e.mail.Stop(ctx))
		}
		if e.sm != nil {
			errs = append(errs, e.sm.Stop(ctx))
		}
		for _, dir := range []string{e.pgDir, e.mailDir} {
			if dir != "" {
				errs = append(errs, os.RemoveAll(dir))
			}
		}
		if e.pg != nil && e.pg.Dir() != filepath.Join(e.pgDir, "data") {
			errs = append(errs, os.RemoveAll(e.pg.Dir())) // fallback data dir
		}
	})
	return errors.Join(errs...)
}

// requireBinary returns the path of tool in localstack.BinDir(), failing t
// with instructions when it is missing.
func requireBinary(t testing.TB, tool string) string {
	t.Helper()
	path := filepath.Join(localstack.BinDir(), tool)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("testenv: %s binary not found at %s: install the tool binaries into the repository's bin directory or set %s (%v)",
			tool, path, localstack.BinDirEnv, err)
	}
	return path
}

// withDatabase returns the postgres URL admin pointing at database name.
func withDatabase(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s must be a postgres:// URL, got %q", DatabaseURLEnv, admin)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: reading random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

// logger returns the logger for servers started by tests: warnings and errors
// only, on stderr.
func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
