// Package pg connects to PostgreSQL and applies a service's embedded migrations.
package pg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Connect opens a pool whose connections use schema as their search_path, so each service keeps
// its tables in its own schema of a shared database.
func Connect(ctx context.Context, url, schema string, maxConns int32) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("invalid schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "tally-" + schema
	// Batch statements take arrays of any length: plan each execution for its real arguments
	// rather than a generic plan that guesses the array sizes (and may pick sequential scans).
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	if maxConns > 0 {
		cfg.MaxConns = maxConns
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

// Migrate applies the *.up.sql files of fsys (sorted by name, e.g. 20261125090000_init.up.sql)
// that schema has not applied yet, each in its own transaction, under an advisory lock so that
// replicas starting together apply each migration once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS) error {
	if !schemaName.MatchString(schema) {
		return fmt.Errorf("invalid schema name %q", schema)
	}
	names, err := fs.Glob(fsys, "*.up.sql")
	if err != nil {
		return fmt.Errorf("listing migrations: %w", err)
	}
	sort.Strings(names)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('tally.migrate.' || $1))", schema); err != nil {
		return fmt.Errorf("locking migrations: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext('tally.migrate.' || $1))", schema)
	}()
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

// IsSerializationFailure reports whether err is a serialization failure or a deadlock, both of
// which a caller may retry.
func IsSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
