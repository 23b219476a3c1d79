package pg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotMigrated is returned by CheckMigrated when the schema lacks a migration of the binary:
// the service must not serve on tables older than its code.
var ErrNotMigrated = errors.New("database not migrated")

// MigrateDatabase opens a small pool on url, applies the migrations of fsys to schema (Migrate)
// and closes the pool: the whole of a service's `migrate` command.
func MigrateDatabase(ctx context.Context, url, schema string, fsys fs.FS) error {
	pool, err := Open(ctx, Options{URL: url, Schema: schema, MaxConns: 2, ConnectTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer pool.Close()
	return Migrate(ctx, pool, schema, fsys)
}

// Prepare readies schema for a service starting on pool: with migrate it applies the
// migrations of fsys (Migrate), otherwise it only checks they were applied (CheckMigrated),
// for deployments that migrate in a separate step (TALLY_MIGRATE_ON_START=false).
func Prepare(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, migrate bool) error {
	if migrate {
		return Migrate(ctx, pool, schema, fsys)
	}
	return CheckMigrated(ctx, pool, schema, fsys)
}

// CheckMigrated returns an error wrapping ErrNotMigrated, naming the first missing migration,
// unless schema has applied every *.up.sql file of fsys.
func CheckMigrated(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS) error {
	names, err := migrationFiles(schema, fsys)
	if err != nil {
		return err
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema+".schema_migrations").Scan(&exists); err != nil {
		return fmt.Errorf("reading migration state of %s: %w", schema, err)
	}
	applied := map[string]bool{}
	if exists {
		rows, err := pool.Query(ctx, fmt.Sprintf("SELECT version FROM %s.schema_migrations", schema))
		if err != nil {
			return fmt.Errorf("reading migration state of %s: %w", schema, err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("reading migration state of %s: %w", schema, err)
		}
		for _, v := range versions {
			applied[v] = true
		}
	}
	var missing []string
	for _, name := range names {
		if version := strings.TrimSuffix(name, ".up.sql"); !applied[version] {
			missing = append(missing, version)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: schema %s lacks migration %s (%d of %d missing); run the service's migrate command first",
			ErrNotMigrated, schema, missing[0], len(missing), len(names))
	}
	return nil
}

// migrationFiles checks schema is a valid name and returns the *.up.sql files of fsys in the
// order they apply.
func migrationFiles(schema string, fsys fs.FS) ([]string, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("invalid schema name %q", schema)
	}
	names, err := fs.Glob(fsys, "*.up.sql")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	sort.Strings(names)
	return names, nil
}
