package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/loadgen"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// runShardCompare is `ledger-bench -shards`: durable debits over 10,000 organizations with the
// ledger on one PostgreSQL, then sharded over two (each its own cluster, on the same machine),
// alternating (1, 2, 1, 2, 1, 2) on fresh databases so neither gains from running first; it prints
// each run and the ratio of the means and of the medians (this machine is shared: runs drift). Everything shares the machine's cores: what bounds the
// gain is printed with it (the ledger's and the PostgreSQLs' CPU, not a shard's commit path).
func runShardCompare(ctx context.Context, cfg benchConfig) error {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := cfg.dataDir
	if dir == "" {
		dir = loadgen.DataDir("bench-shards")
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	stores, err := loadgen.StartStores(ctx, "bench-shards", filepath.Join(dir, "a"), true, logger)
	if err != nil {
		return err
	}
	defer stores.Stop(ctx)
	pgB, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(dir, "b", "pg"), Durable: true, Logger: logger})
	if err != nil {
		return err
	}
	defer func() { _ = pgB.Stop(context.WithoutCancel(ctx)) }()
	fmt.Printf("durable debits over %d organizations, %d callers over %d connections, %s per run after %s warm-up, GOMAXPROCS=%d\n",
		cfg.orgs, cfg.callers, cfg.conns, cfg.duration, cfg.warmup, runtimeProcs())
	fmt.Printf("%-28s %12s %10s %10s\n", "run", "debits/s", "p50", "p99")
	runs := map[int][]float64{}
	for i, shards := range []int{1, 2, 1, 2, 1, 2} {
		db := fmt.Sprintf("shards_run_%d", i)
		urls := []string{stores.PG.DatabaseURL(db), pgB.DatabaseURL(db)}
		for _, admin := range []string{stores.PG.AdminURL(), pgB.AdminURL()} {
			if err := createDatabase(ctx, admin, db); err != nil {
				return err
			}
		}
		opts := ledgertest.Options{DatabaseURL: urls[0], RedisURL: stores.Redis.URL(), Logger: logger, SweepInterval: time.Second,
			PlatformShards: 16, CommitMaxBatch: 256, CommitWorkers: cfg.workers, CommitMaxWait: cfg.maxWait}
		if shards == 2 {
			opts.Shards = "a=" + urls[0] + " b=" + urls[1]
		}
		res, err := shardRun(ctx, cfg, opts)
		if err != nil {
			return fmt.Errorf("%d shard(s): %w", shards, err)
		}
		runs[shards] = append(runs[shards], res.OpsPerSec)
		fmt.Printf("%-28s %12.0f %10s %10s\n", fmt.Sprintf("Debit (10,000 orgs), %d shard", shards), res.OpsPerSec, loadgen.Round(res.P50), loadgen.Round(res.P99))
	}
	one, two := mean(runs[1]), mean(runs[2])
	fmt.Printf("mean: 1 shard %.0f/s, 2 shards %.0f/s: ratio %.2f\n", one, two, two/one)
	one, two = median(runs[1]), median(runs[2])
	fmt.Printf("median: 1 shard %.0f/s, 2 shards %.0f/s: ratio %.2f\n", one, two, two/one)
	return nil
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// shardRun starts a ledger with opts, seeds the organizations and measures spread debits.
func shardRun(ctx context.Context, cfg benchConfig, opts ledgertest.Options) (loadgen.Result, error) {
	l, err := ledgertest.New(ctx, opts)
	if err != nil {
		return loadgen.Result{}, err
	}
	defer func() { _ = l.Close() }()
	token, err := auth.Mint([]byte(ledgertest.Secret), auth.Claims{Subject: "bench", Roles: []auth.Role{auth.RoleService, auth.RoleOps}}, time.Hour)
	if err != nil {
		return loadgen.Result{}, err
	}
	var conns []*grpc.ClientConn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range cfg.conns {
		c, err := rpcclient.Dial(l.Addr, token)
		if err != nil {
			return loadgen.Result{}, err
		}
		conns = append(conns, c)
	}
	client := func(w int) ledgerv1.LedgerServiceClient { return ledgerv1.NewLedgerServiceClient(conns[w%len(conns)]) }
	if err := loadgen.Parallel(ctx, 64, cfg.orgs, func(i int) error {
		_, err := client(i).Credit(ctx, &ledgerv1.CreditRequest{OrgId: fmt.Sprintf("org-%05d", i), Amount: money.ToProto(1_000_000*money.NanosPerUnit, "USD"), IdempotencyKey: "seed"})
		return err
	}); err != nil {
		return loadgen.Result{}, fmt.Errorf("seeding: %w", err)
	}
	var seq atomic.Int64
	return loadgen.Measure(ctx, cfg.callers, cfg.warmup, cfg.duration, func(ctx context.Context, w int, r *rand.Rand) error {
		_, err := client(w).Debit(ctx, &ledgerv1.DebitRequest{OrgId: fmt.Sprintf("org-%05d", r.IntN(cfg.orgs)),
			IdempotencyKey: fmt.Sprintf("s-%d", seq.Add(1)), Description: "bench call", Amount: money.ToProto(2500, "USD")})
		return err
	})
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
