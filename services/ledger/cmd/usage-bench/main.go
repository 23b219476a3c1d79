// Command usage-bench is the usage-summary part of `make bench`: it starts a private, durable
// PostgreSQL and the ledger on loopback, loads one organization with a million debits and
// captures over 30 days across several models and instance types, lets the ledger's own usage
// follower count them, and measures GetUsageSummary (30 days) over real gRPC, printing p50 and
// p99.
//
// The million charges are bulk-inserted in SQL into the ledger's transactions and outbox (as one
// ledger batch would write them, one event per transaction, sequence numbers derived from the
// transaction's id by event_seq_base) without their postings: the Debit path at ~1,500/s would take 11 minutes
// to write them, and the summary never reads postings. The follower that counts them is the real
// one, and its catch-up rate is printed. A few thousand more debits then go through the real
// Debit RPC, and the summary must count both.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/loadgen"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

const org = "usage-heavy"

func main() {
	debits := flag.Int("debits", 1_000_000, "charges bulk-inserted for the organization")
	viaRPC := flag.Int("rpc-debits", 5_000, "further debits written through the Debit RPC")
	calls := flag.Int("calls", 500, "measured GetUsageSummary calls")
	dataDir := flag.String("data", "", "data directory (default <repo>/.data/usage-bench)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *debits, *viaRPC, *calls, *dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "usage-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, debits, viaRPC, calls int, dataDir string) error {
	b, err := startBench(ctx, dataDir)
	if err != nil {
		return err
	}
	defer b.stop(ctx)
	if err := b.load(ctx, debits, viaRPC); err != nil {
		return err
	}
	req := &ledgerv1.GetUsageSummaryRequest{OrgId: org, Days: 30}
	count, err := b.checkSummary(ctx, req, int64(debits+viaRPC))
	if err != nil {
		return err
	}
	var rows int64
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM ledger.usage_daily WHERE org_id = $1`, org).Scan(&rows); err != nil {
		return err
	}
	fmt.Printf("%-60s %8s %10s %10s\n", "scenario", "calls", "p50", "p99")
	for _, sc := range b.scenarios(ctx, req, count, rows) {
		p50, p99, err := timeCalls(calls, sc.call)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		fmt.Printf("%-60s %8d %10s %10s\n", sc.name, calls, loadgen.Round(p50), loadgen.Round(p99))
	}
	return nil
}

// bench is PostgreSQL and the ledger on loopback, with an ops and a member connection.
type bench struct {
	stores *loadgen.Stores
	ledger *ledgertest.Ledger
	conns  []*grpc.ClientConn
	pool   *pgxpool.Pool
	ops    ledgerv1.LedgerServiceClient
	member ledgerv1.LedgerServiceClient
}

func startBench(ctx context.Context, dataDir string) (_ *bench, err error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	stores, err := loadgen.StartStores(ctx, "usage-bench", dataDir, false, logger)
	if err != nil {
		return nil, err
	}
	b := &bench{stores: stores}
	defer func() {
		if err != nil {
			b.stop(ctx)
		}
	}()
	b.ledger, err = ledgertest.New(ctx, ledgertest.Options{
		DatabaseURL: stores.PG.URL(), Logger: logger, SweepInterval: time.Second,
		CommitMaxBatch: 256, CommitWorkers: 1, PlatformShards: 16, UsageInterval: 250 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	addr := b.ledger.Addr
	if b.ops, err = b.dial(addr, auth.Claims{Subject: "bench", Roles: []auth.Role{auth.RoleService, auth.RoleOps}}); err != nil {
		return nil, err
	}
	if b.member, err = b.dial(addr, auth.Claims{Subject: "member", OrgID: org, Roles: []auth.Role{auth.RoleMember}}); err != nil {
		return nil, err
	}
	b.pool, err = pgxpool.New(ctx, stores.PG.URL())
	return b, err
}

func (b *bench) dial(addr string, claims auth.Claims) (ledgerv1.LedgerServiceClient, error) {
	token, err := auth.Mint([]byte(ledgertest.Secret), claims, time.Hour)
	if err != nil {
		return nil, err
	}
	conn, err := rpcclient.Dial(addr, token)
	if err != nil {
		return nil, err
	}
	b.conns = append(b.conns, conn)
	return ledgerv1.NewLedgerServiceClient(conn), nil
}

func (b *bench) stop(ctx context.Context) {
	if b.pool != nil {
		b.pool.Close()
	}
	for _, c := range b.conns {
		_ = c.Close()
	}
	if b.ledger != nil {
		_ = b.ledger.Close()
	}
	b.stores.Stop(ctx)
}

// load credits the org, bulk-inserts the charges, lets the usage follower count them, then writes
// viaRPC more through the real Debit path.
func (b *bench) load(ctx context.Context, debits, viaRPC int) error {
	if _, err := b.ops.Credit(ctx, &ledgerv1.CreditRequest{OrgId: org, Amount: money.ToProto(1_000_000*money.NanosPerUnit, "USD"), IdempotencyKey: "seed"}); err != nil {
		return err
	}
	fmt.Printf("bulk-inserting %d debits and captures of %s over 30 days (5 models, 4 instance types, other)…\n", debits, org)
	began := time.Now()
	// One transaction per million: one insert writes at most 2^20 - 1 events (event_seq_base).
	for from := 1; from <= debits; from += bulkChunk {
		if err := bulkInsert(ctx, b.pool, from, min(bulkChunk, debits-from+1)); err != nil {
			return err
		}
	}
	fmt.Printf("inserted in %s\n", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	if err := waitCounted(ctx, b.pool, 10*time.Minute); err != nil {
		return err
	}
	took := time.Since(began)
	fmt.Printf("usage follower counted %d events in %s (%.0f events/s, pages of 5000)\n", debits, took.Round(time.Millisecond), float64(debits)/took.Seconds())
	// What autovacuum would do soon after such a load, done now rather than during the
	// measurements.
	vctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := b.pool.Exec(vctx, `VACUUM (ANALYZE) ledger.transactions, ledger.events, ledger.usage_daily`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	models := []string{"llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "mistral-7b", "whisper-large", "sdxl"}
	if err := loadgen.Parallel(ctx, 32, viaRPC, func(i int) error {
		meta := map[string]string{"model_id": models[i%len(models)]}
		if i%3 == 1 {
			meta = map[string]string{"instance_type": fmt.Sprintf("gpu-%d", i%4)}
		}
		_, err := b.ops.Debit(ctx, &ledgerv1.DebitRequest{OrgId: org, Amount: money.ToProto(2500, "USD"), IdempotencyKey: fmt.Sprintf("rpc-%d", i), Metadata: meta})
		return err
	}); err != nil {
		return err
	}
	return waitCounted(ctx, b.pool, time.Minute)
}

// checkSummary checks the summary counts every charge over 30 days and returns the count.
func (b *bench) checkSummary(ctx context.Context, req *ledgerv1.GetUsageSummaryRequest, want int64) (int64, error) {
	first, err := b.member.GetUsageSummary(ctx, req)
	if err != nil {
		return 0, err
	}
	var count int64
	for _, it := range first.GetTotals() {
		count += it.GetCount()
	}
	if count != want {
		return 0, fmt.Errorf("the summary counts %d charges, want %d", count, want)
	}
	if len(first.GetDays()) != 30 {
		return 0, fmt.Errorf("the summary has %d days, want 30", len(first.GetDays()))
	}
	return count, nil
}

type scenario struct {
	name string
	call func() error
}

func (b *bench) scenarios(ctx context.Context, req *ledgerv1.GetUsageSummaryRequest, count, rows int64) []scenario {
	return []scenario{
		{fmt.Sprintf("GetUsageSummary 30 days (%d charges, %d rows)", count, rows), func() error {
			_, err := b.member.GetUsageSummary(ctx, req)
			return err
		}},
		// The Usage page's history beside it: the first page, and the one credit among a
		// million charges through the kind filter.
		{"ListTransactions, first page of 50", func() error {
			_, err := b.member.ListTransactions(ctx, &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 50})
			return err
		}},
		{"ListTransactions kind=CREDIT (1 among 1M charges)", func() error {
			resp, err := b.member.ListTransactions(ctx, &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 50, Kind: ledgerv1.TransactionKind_TRANSACTION_KIND_CREDIT})
			if err == nil && len(resp.GetTransactions()) != 1 {
				err = fmt.Errorf("%d credits listed, want 1", len(resp.GetTransactions()))
			}
			return err
		}},
	}
}

// timeCalls makes 20 warm-up calls, then n timed ones, one at a time.
func timeCalls(n int, call func() error) (p50, p99 time.Duration, err error) {
	for range 20 {
		if err := call(); err != nil {
			return 0, 0, err
		}
	}
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := call(); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(start))
	}
	p50, p99 = loadgen.Latencies(lat)
	return p50, p99, nil
}

// bulkChunk is the most charges bulkInsert writes in one transaction (one events insert).
const bulkChunk = 1_000_000

// bulkInsert writes n charges of org, numbered from from, in one transaction, spread over the
// last 30 UTC days: a third usage-priced (pricing.model_id), a third rental periods (metadata
// instance_type), the rest captures and debits naming a model in metadata or nothing; and one
// outbox event each, numbered like a ledger batch's (event_seq_base: at most 2^20 - 1 events in
// one insert).
func bulkInsert(ctx context.Context, pool *pgxpool.Pool, from, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Within the summary's 30 UTC days: from midnight 29 days ago to now.
	now := time.Now().UTC()
	y, m, d := now.Date()
	span := int64(now.Sub(time.Date(y, m, d-29, 0, 0, 0, 0, time.UTC)) / time.Second)
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`SET LOCAL statement_timeout = 0`, nil},
		{`CREATE TEMP TABLE bulk ON COMMIT DROP AS
SELECT g AS n, gen_random_uuid() AS id,
  CASE WHEN g % 10 = 9 THEN 'capture' ELSE 'debit' END AS kind,
  -(1000 + (g::bigint * 7919) % 100000) AS amount,
  now() - make_interval(secs => ((g::bigint * 2591) % $2::bigint)::double precision) AS created_at,
  CASE WHEN g % 3 = 0 THEN json_build_object('model_id', (ARRAY['llama-3.1-8b-instruct', 'llama-3.1-70b-instruct', 'mistral-7b', 'whisper-large', 'sdxl'])[1 + g % 5]) END AS pricing,
  CASE WHEN g % 3 = 1 THEN jsonb_build_object('instance_type', 'gpu-' || (g % 4), 'instance_id', 'i-' || (g % 50))
       WHEN g % 6 = 2 THEN jsonb_build_object('model_id', 'mistral-7b')
       ELSE '{}'::jsonb END AS metadata
FROM generate_series($3::int, $3::int + $1::int - 1) AS g`, []any{n, span, from}},
		{`INSERT INTO ledger.transactions (id, org_id, kind, amount, balance_after, currency, description, metadata, idempotency_key, actor, created_at, pricing)
SELECT id, $1, kind, amount, 0, 'USD', 'bulk charge', metadata, 'bulk-' || n, 'usage-bench', created_at, pricing FROM bulk ORDER BY n`, []any{org}},
		{`INSERT INTO ledger.events (seq, org_id, kind, transaction_id, amount, balance, available, currency, occurred_at)
SELECT s.base + b.n - $3 + 1, $1, b.kind, b.id, b.amount, 0, 0, 'USD', b.created_at FROM (SELECT ledger.event_seq_base($2) AS base) s, bulk b`, []any{org, n, from}},
	} {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("bulk insert: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("bulk insert: %w", err)
	}
	return nil
}

// waitCounted waits until the usage follower has counted every event of the outbox.
func waitCounted(ctx context.Context, pool *pgxpool.Pool, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var counted, newest int64
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := pool.QueryRow(qctx, `SELECT (SELECT last_seq FROM ledger.usage_cursor), (SELECT coalesce(max(seq), 0) FROM ledger.events)`).Scan(&counted, &newest)
		cancel()
		if err != nil {
			return fmt.Errorf("reading the usage cursor: %w", err)
		}
		if counted == newest {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the usage follower counted up to seq %d of %d in %s", counted, newest, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
