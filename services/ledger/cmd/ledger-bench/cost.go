package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/loadgen"
)

// cost is what PostgreSQL and the processes did during one scenario, read before and after it:
// rows written (inserted + updated), index entries inserted, WAL bytes, debits committed (the
// transactions table's inserts) and CPU seconds of the bench process (the ledger, pricing and
// the load generator share it) and of the PostgreSQL server's processes.
type cost struct {
	debits, rows, indexEntries int64
	walBytes                   int64
	benchCPU, pgCPU            float64
	// calls counts the calls of a scenario without debits, warm-up included (its bench CPU is
	// printed per call: server and load generator together, in one process).
	calls int64
	// tables are the rows inserted, updated and updated without HOT, per table.
	tables map[string][3]int64
	// top are the statements that took the most execution time (statements.go).
	top []statementCost
}

// costMeter reads the counters a cost is the difference of.
type costMeter struct {
	pool   *pgxpool.Pool
	pgDir  string
	ticks  float64
	before cost
}

func newCostMeter(ctx context.Context, url, pgDir string) (*costMeter, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	return &costMeter{pool: pool, pgDir: pgDir, ticks: 100}, nil // USER_HZ is 100 on Linux
}

func (m *costMeter) close() { m.pool.Close() }

// tableCounts sums, over the ledger's tables, the rows inserted and updated and the index entries
// those writes made: every index of a table takes an entry per insert and per update that is
// not HOT. The partial index of the rare transaction kinds is left out (a debit never enters it;
// the other partial indexes are counted whole, an upper bound).
const tableCounts = `SELECT coalesce(sum(CASE WHEN t.relname = 'transactions' THEN t.n_tup_ins END), 0)::bigint,
  coalesce(sum(t.n_tup_ins + t.n_tup_upd), 0)::bigint,
  coalesce(sum((t.n_tup_ins + t.n_tup_upd - t.n_tup_hot_upd) * (SELECT count(*) FROM pg_index i
     WHERE i.indrelid = t.relid AND i.indexrelid <> 'ledger.transactions_org_rare_kinds'::regclass)), 0)::bigint,
  pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint
FROM pg_stat_user_tables t WHERE t.schemaname = 'ledger'`

func (m *costMeter) read(ctx context.Context) (cost, error) {
	var c cost
	if err := m.pool.QueryRow(ctx, tableCounts).Scan(&c.debits, &c.rows, &c.indexEntries, &c.walBytes); err != nil {
		return cost{}, fmt.Errorf("reading table statistics: %w", err)
	}
	rows, err := m.pool.Query(ctx, `SELECT relname, n_tup_ins, n_tup_upd, n_tup_upd - n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = 'ledger'`)
	if err != nil {
		return cost{}, fmt.Errorf("reading table statistics: %w", err)
	}
	c.tables = map[string][3]int64{}
	for rows.Next() {
		var name string
		var v [3]int64
		if err := rows.Scan(&name, &v[0], &v[1], &v[2]); err != nil {
			rows.Close()
			return cost{}, fmt.Errorf("reading table statistics: %w", err)
		}
		c.tables[name] = v
	}
	if err := rows.Err(); err != nil {
		return cost{}, fmt.Errorf("reading table statistics: %w", err)
	}
	self, err := processCPU(os.Getpid())
	if err != nil {
		return cost{}, err
	}
	c.benchCPU = self / m.ticks
	pg, err := m.postgresCPU()
	if err != nil {
		return cost{}, err
	}
	c.pgCPU = pg / m.ticks
	return c, nil
}

// start reads the counters before a scenario.
func (m *costMeter) start(ctx context.Context) error {
	if err := m.resetStatements(ctx); err != nil {
		return err
	}
	c, err := m.read(ctx)
	m.before = c
	return err
}

// stop reads them after it, once the table statistics settled: a backend reports its counts
// about once a second while busy, and within 10s once idle.
func (m *costMeter) stop(ctx context.Context) (cost, error) {
	after, err := m.read(ctx)
	if err != nil {
		return cost{}, err
	}
	top, err := m.readStatements(ctx)
	if err != nil {
		return cost{}, err
	}
	cpu := after
	for range 12 {
		if err := sleepCtx(ctx, 1100*time.Millisecond); err != nil {
			return cost{}, err
		}
		again, err := m.read(ctx)
		if err != nil {
			return cost{}, err
		}
		settled := again.rows == after.rows
		after = again
		if settled {
			break
		}
	}
	b := m.before
	tables := map[string][3]int64{}
	for name, v := range after.tables {
		w := b.tables[name]
		if d := [3]int64{v[0] - w[0], v[1] - w[1], v[2] - w[2]}; d != ([3]int64{}) {
			tables[name] = d
		}
	}
	return cost{
		debits: after.debits - b.debits, rows: after.rows - b.rows, indexEntries: after.indexEntries - b.indexEntries,
		walBytes: cpu.walBytes - b.walBytes, benchCPU: cpu.benchCPU - b.benchCPU, pgCPU: cpu.pgCPU - b.pgCPU, tables: tables, top: top,
	}, nil
}

// perTable prints the rows each table took per debit: inserted, updated (of which not HOT).
func (c cost) perTable() string {
	if c.debits <= 0 {
		return ""
	}
	names := make([]string, 0, len(c.tables))
	for n := range c.tables {
		names = append(names, n)
	}
	sort.Strings(names)
	var sb strings.Builder
	sb.WriteString("      per debit:")
	d := float64(c.debits)
	for _, n := range names {
		v := c.tables[n]
		fmt.Fprintf(&sb, " %s +%.3f", n, float64(v[0])/d)
		if v[1] > 0 {
			fmt.Fprintf(&sb, " ~%.3f (%.3f not HOT)", float64(v[1])/d, float64(v[2])/d)
		}
		sb.WriteString(";")
	}
	return sb.String()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// String prints a cost per debit (and CPU per 1,000 debits); "-" when nothing was debited.
func (c cost) String() string {
	if c.debits <= 0 {
		cpu := "-"
		if c.calls > 0 {
			cpu = fmt.Sprintf("%.1fµs/call", 1e6*c.benchCPU/float64(c.calls))
		}
		return fmt.Sprintf("%7s %7s %8s %8s %8s", "-", "-", "-", cpu, "-")
	}
	d := float64(c.debits)
	return fmt.Sprintf("%7.2f %7.2f %8.0f %8.3f %8.3f", float64(c.rows)/d, float64(c.indexEntries)/d, float64(c.walBytes)/d,
		1000*c.benchCPU/d, 1000*c.pgCPU/d)
}

const costHeader = "   rows/d   idx/d   WAL B/d  cpu-bench  cpu-pg (s/1k debits)"

// processCPU is the user + system CPU of pid in clock ticks.
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	f, err := statFields(string(b))
	if err != nil {
		return 0, err
	}
	// Fields after the command: state(0) ppid(1) ... utime(11) stime(12).
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return u + s, nil
}

func statFields(stat string) ([]string, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, fmt.Errorf("unexpected stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return nil, fmt.Errorf("unexpected stat %q", stat)
	}
	return f, nil
}

// postgresCPU sums the CPU of the postmaster (its pid is the first line of postmaster.pid) and of
// its children: the backends and the background processes.
func (m *costMeter) postgresCPU() (float64, error) {
	b, err := os.ReadFile(filepath.Join(m.pgDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	root := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	total, err := processCPU(atoi(root))
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid := atoi(e.Name())
		if pid <= 0 {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		f, err := statFields(string(raw))
		if err != nil || f[1] != root {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		total += u + s
	}
	return total, nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// measured runs a scenario between two readings of the meter.
func (b *bench) measured(ctx context.Context, run func() (loadgen.Result, string, error)) (loadgen.Result, string, cost, error) {
	if err := b.meter.start(ctx); err != nil {
		return loadgen.Result{}, "", cost{}, err
	}
	res, extra, err := run()
	if err != nil {
		return res, extra, cost{}, err
	}
	c, err := b.meter.stop(ctx)
	return res, extra, c, err
}

// setWALCompression sets wal_compression (full-page images compressed in the WAL) and reloads.
func (m *costMeter) setWALCompression(ctx context.Context, v string) error {
	if _, err := m.pool.Exec(ctx, "ALTER SYSTEM SET wal_compression = "+quoteLiteral(v)); err != nil {
		return fmt.Errorf("setting wal_compression: %w", err)
	}
	if _, err := m.pool.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reloading the configuration: %w", err)
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
