package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/localstack"
)

// topStatements is how many statements each scenario's pg_stat_statements summary lists.
const topStatements = 6

// statementCost is one statement's share of a scenario, from pg_stat_statements: calls,
// execution time, rows and WAL bytes.
type statementCost struct {
	query          string
	calls, rows    int64
	execMs         float64
	walBytes       int64
	walFullPageImg int64
}

// enableStatements loads pg_stat_statements into the private cluster (it must be preloaded, so
// the server restarts) and creates the extension, tracking the statements of trigger functions
// too (the postings balance check is one).
func enableStatements(ctx context.Context, pg *localstack.Postgres) error {
	pool, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		return fmt.Errorf("enabling pg_stat_statements: %w", err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"); err != nil {
		return fmt.Errorf("enabling pg_stat_statements: %w", err)
	}
	pool.Close()
	if err := pg.Restart(ctx); err != nil {
		return fmt.Errorf("enabling pg_stat_statements: %w", err)
	}
	pool, err = pgxpool.New(ctx, pg.URL())
	if err != nil {
		return fmt.Errorf("enabling pg_stat_statements: %w", err)
	}
	defer pool.Close()
	// Its settings exist once the library is loaded.
	for _, q := range []string{
		"CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
		"ALTER SYSTEM SET pg_stat_statements.track = 'all'",
		"SELECT pg_reload_conf()",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("enabling pg_stat_statements: %w", err)
		}
	}
	return nil
}

// resetStatements starts a scenario's pg_stat_statements counts from zero.
func (m *costMeter) resetStatements(ctx context.Context) error {
	if _, err := m.pool.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
		return fmt.Errorf("resetting pg_stat_statements: %w", err)
	}
	return nil
}

// readStatements returns the statements that took the most execution time since the reset,
// the meter's own reads left out.
func (m *costMeter) readStatements(ctx context.Context) ([]statementCost, error) {
	rows, err := m.pool.Query(ctx, `SELECT query, calls, rows, total_exec_time, wal_bytes::bigint, wal_fpi
FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%' AND query NOT LIKE '%pg_current_wal_lsn%'
ORDER BY total_exec_time DESC LIMIT $1`, topStatements)
	if err != nil {
		return nil, fmt.Errorf("reading pg_stat_statements: %w", err)
	}
	defer rows.Close()
	var out []statementCost
	for rows.Next() {
		var s statementCost
		if err := rows.Scan(&s.query, &s.calls, &s.rows, &s.execMs, &s.walBytes, &s.walFullPageImg); err != nil {
			return nil, fmt.Errorf("reading pg_stat_statements: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// statements prints the scenario's top statements per debit: calls, execution milliseconds per
// 1,000 debits, rows and WAL bytes (of which full-page images, in records).
func (c cost) statements() string {
	if c.debits <= 0 || len(c.top) == 0 {
		return ""
	}
	d := float64(c.debits)
	var sb strings.Builder
	sb.WriteString("      pg_stat_statements (per debit: calls, exec ms/1k debits, rows, WAL B, FPI):\n")
	for _, s := range c.top {
		fmt.Fprintf(&sb, "        %6.3f %8.1f %7.3f %7.0f %6.3f  %s\n", float64(s.calls)/d, 1000*s.execMs/d, float64(s.rows)/d,
			float64(s.walBytes)/d, float64(s.walFullPageImg)/d, shortQuery(s.query))
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

// shortQuery is the start of a statement on one line.
func shortQuery(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 90 {
		q = q[:90] + "…"
	}
	return q
}
