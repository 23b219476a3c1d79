// Package pg connects to PostgreSQL and applies a service's embedded migrations.
package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Connect opens a pool whose connections use schema as their search_path, so each service keeps
// its tables in its own schema of a shared database.
func Connect(ctx context.Context, url, schema string, maxConns int32) (*pgxpool.Pool, error) {
	return Open(ctx, Options{URL: url, Schema: schema, MaxConns: maxConns})
}

// Options configures Open.
type Options struct {
	URL    string
	Schema string
	// MaxConns is the pool size (pgxpool's default when 0).
	MaxConns int32
	// StatementTimeout is the server-side statement_timeout of every connection (none when 0);
	// callers still put their own deadline on each call, this is the database's guard.
	StatementTimeout time.Duration
	// ConnectTimeout bounds dialing and authenticating one connection (none when 0), so an
	// unreachable server fails a call quickly instead of hanging until its deadline.
	ConnectTimeout time.Duration
	// Tracer traces the pool's queries (telemetry.PGTracer); nil traces nothing.
	Tracer pgx.QueryTracer
}

// Open opens a pool like Connect, with the timeouts of o.
func Open(ctx context.Context, o Options) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(o.Schema) {
		return nil, fmt.Errorf("invalid schema name %q", o.Schema)
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = o.Schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "tally-" + o.Schema
	// Batch statements take arrays of any length: plan each execution for its real arguments
	// rather than a generic plan that guesses the array sizes (and may pick sequential scans).
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	if o.StatementTimeout > 0 {
		ms := strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = ms
		// A transaction left open by a client that went away must not hold its row locks longer.
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = ms
	}
	if o.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	}
	if o.Tracer != nil {
		cfg.ConnConfig.Tracer = o.Tracer
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return pool, nil
}

// restoreTimeout bounds each statement that puts a migrations connection back as it was.
const restoreTimeout = 5 * time.Second

// restore runs sql on conn to put it back as it was, within restoreTimeout even when ctx is done
// (a stopped migrate command still unlocks). A connection it cannot restore is closed, so that
// the pool never hands out one without its timeouts or still holding the lock.
func restore(ctx context.Context, conn *pgxpool.Conn, sql string, args ...any) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	if _, err := conn.Exec(rctx, sql, args...); err != nil {
		_ = conn.Conn().Close(rctx)
	}
}

// Migrate applies the *.up.sql files of fsys (sorted by name, e.g. 20261125090000_init.up.sql)
// that schema has not applied yet, each in its own transaction, under an advisory lock so that
// replicas starting together apply each migration once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS) error {
	names, err := migrationFiles(schema, fsys)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring connection: %w", err)
	}
	defer conn.Release()
	// A migration may rewrite a large table and the lock waits for another replica's migrations:
	// neither is bound by the pool's statement timeout, nor a slow client's pause between a
	// migration's statements by its idle-in-transaction timeout (the same value).
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0"); err != nil {
		return fmt.Errorf("preparing migrations: %w", err)
	}
	defer restore(ctx, conn, "RESET statement_timeout; RESET idle_in_transaction_session_timeout")
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('tally.migrate.' || $1))", schema); err != nil {
		return fmt.Errorf("locking migrations: %w", err)
	}
	defer restore(ctx, conn, "SELECT pg_advisory_unlock(hashtext('tally.migrate.' || $1))", schema)
	setup := fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`, schema)
	if _, err := conn.Exec(ctx, setup); err != nil {
		return fmt.Errorf("creating schema %s: %w", schema, err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(name, ".up.sql")
		var applied bool
		err := conn.QueryRow(ctx, fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s.schema_migrations WHERE version = $1)", schema), version).Scan(&applied)
		if err != nil {
			return fmt.Errorf("reading migration state: %w", err)
		}
		if applied {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+schema); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version) VALUES ($1)", schema), version)
			return err
		}); err != nil {
			return fmt.Errorf("applying migration %s: %w", name, err)
		}
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique constraint violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// IsUnavailable reports whether err says the database could not be reached or could not serve
// the call (connection refused, lost or timed out; the server shutting down, starting up, out of
// connections or cancelling the statement on its timeout), as opposed to an error in the data or
// the SQL. Calls failing this way may succeed when retried later.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03", // lock_not_available: lock_timeout
			"25006",          // read_only_sql_transaction: connected to a standby
			"40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		// 08 connection exception; 53 insufficient resources (too many connections, out of
		// memory or disk); 57 operator intervention (admin or crash shutdown, cannot connect now,
		// query_canceled by statement_timeout).
		switch pgErr.Code[:min(2, len(pgErr.Code))] {
		case "08", "53", "57":
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, puddle.ErrClosedPool):
		return true
	}
	return false
}

// IsSerializationFailure reports whether err is a serialization failure or a deadlock, both of
// which a caller may retry.
func IsSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
