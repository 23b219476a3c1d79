// Command ledger-bench is `make bench`: it starts a private, durable PostgreSQL and a Redis, runs
// the ledger on loopback, and drives it over real gRPC with 64 concurrent callers, printing
// ops/s, p50 and p99 per scenario and each scenario's ratio to a no-op gRPC call (the ceiling).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/loadgen"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/ledger/service"
	pricing "github.com/tallyhq/tally/services/pricing/service"
)

const secret = "ledger-bench-secret-0123456789abcdef"

func main() {
	duration := flag.Duration("duration", 5*time.Second, "measured time per scenario")
	warmup := flag.Duration("warmup", time.Second, "unmeasured time before each scenario")
	callers := flag.Int("callers", 64, "concurrent callers")
	conns := flag.Int("conns", 4, "gRPC connections shared by the callers")
	orgs := flag.Int("orgs", 10_000, "organizations of the spread debit scenario")
	dataDir := flag.String("data", "", "data directory (default <repo>/.data/bench)")
	only := flag.String("only", "", "run only the scenarios whose name contains this (the ceiling always runs)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured scenarios to this file")
	workers := flag.Int("workers", 1, "the ledger's commit workers (TALLY_COMMIT_WORKERS)")
	maxWait := flag.Duration("maxwait", 0, "the ledger's commit wait (TALLY_COMMIT_MAX_WAIT)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, benchConfig{*duration, *warmup, *callers, *conns, *orgs, *dataDir, *only, *cpuProfile, *workers, *maxWait}); err != nil {
		fmt.Fprintln(os.Stderr, "ledger-bench:", err)
		os.Exit(1)
	}
}

type benchConfig struct {
	duration, warmup time.Duration
	callers, conns   int
	orgs             int
	dataDir          string
	only             string
	cpuProfile       string
	workers          int
	maxWait          time.Duration
}

func run(ctx context.Context, cfg benchConfig) error {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.dataDir == "" {
		cfg.dataDir = filepath.Join(filepath.Dir(localstack.BinDir()), ".data", "bench")
	}
	// A fresh cluster each run, durable (fsync and synchronous_commit on) like production.
	_ = os.RemoveAll(cfg.dataDir)
	pg, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(cfg.dataDir, "pg"), Durable: true, Logger: logger})
	if err != nil {
		return err
	}
	defer func() { _ = pg.Stop(context.WithoutCancel(ctx)) }()
	rds, err := localstack.StartRedis(ctx, localstack.RedisConfig{Dir: filepath.Join(cfg.dataDir, "redis"), Logger: logger})
	if err != nil {
		return err
	}
	defer func() { _ = rds.Stop(context.WithoutCancel(ctx)) }()

	// The pricing service, for usage-priced debits (the ledger follows its price list in memory).
	pricingLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pctx, stopPricing := context.WithCancel(ctx)
	pricingDone := make(chan error, 1)
	go func() {
		pricingDone <- pricing.Run(pctx, pricing.Config{DatabaseURL: pg.URL(), PollInterval: 200 * time.Millisecond, Auth: server.AuthConfig{JWTSecret: secret}}, pricingLis, logger)
	}()
	defer func() { stopPricing(); <-pricingDone }()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stopLedger := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(sctx, service.Config{
			DatabaseURL: pg.URL(), RedisURL: rds.URL(), Auth: server.AuthConfig{JWTSecret: secret},
			DefaultCurrency: "USD", CreditValidity: config.Period{Months: 3}, SweepInterval: time.Second,
			CommitMaxBatch: 256, CommitWorkers: cfg.workers, CommitMaxWait: cfg.maxWait, PlatformShards: 16, DBMaxConns: 20,
			PricingAddr: pricingLis.Addr().String(),
		}, lis, logger)
	}()
	defer func() { stopLedger(); <-done }()

	token, err := auth.Mint([]byte(secret), auth.Claims{Subject: "bench", Roles: []auth.Role{auth.RoleService, auth.RoleOps}}, time.Hour)
	if err != nil {
		return err
	}
	var clients []*grpc.ClientConn
	for range cfg.conns {
		c, err := rpcclient.Dial(lis.Addr().String(), token)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		clients = append(clients, c)
	}
	if err := waitServing(ctx, clients[0]); err != nil {
		return err
	}
	ledger := func(i int) ledgerv1.LedgerServiceClient {
		return ledgerv1.NewLedgerServiceClient(clients[i%len(clients)])
	}
	health := func(i int) grpc_health_v1.HealthClient {
		return grpc_health_v1.NewHealthClient(clients[i%len(clients)])
	}

	// Seed: the hot org, the authorize org and every spread org get credits.
	fmt.Printf("seeding %d organizations…\n", cfg.orgs+2)
	seed := func(org string) error {
		_, err := ledger(0).Credit(ctx, &ledgerv1.CreditRequest{OrgId: org, Amount: money.ToProto(1_000_000*money.NanosPerUnit, "USD"), IdempotencyKey: "seed"})
		return err
	}
	if err := loadgen.Parallel(ctx, 64, cfg.orgs, func(i int) error { return seed(fmt.Sprintf("org-%05d", i)) }); err != nil {
		return err
	}
	for _, org := range []string{"hot", "authz"} {
		if err := seed(org); err != nil {
			return err
		}
	}
	usage := &ledgerv1.Usage{ModelId: "llama-3.1-8b-instruct", Quantities: map[string]string{"input_tokens": "1200", "output_tokens": "350"}}
	if err := waitPriceList(ctx, ledger(0), usage); err != nil {
		return err
	}

	var seq atomic.Int64
	amountScenario := func(ctx context.Context, w int, r *rand.Rand) error {
		org := fmt.Sprintf("org-%05d", r.IntN(cfg.orgs))
		_, err := ledger(w).Debit(ctx, &ledgerv1.DebitRequest{OrgId: org, Amount: money.ToProto(2500, "USD"), IdempotencyKey: fmt.Sprintf("s-%d", seq.Add(1)), Description: "bench call"})
		return err
	}
	scenarios := []struct {
		name string
		call func(ctx context.Context, worker int, r *rand.Rand) error
	}{
		{"no-op gRPC (ceiling)", func(ctx context.Context, w int, _ *rand.Rand) error {
			_, err := health(w).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
			return err
		}},
		{"Authorize", func(ctx context.Context, w int, _ *rand.Rand) error {
			_, err := ledger(w).Authorize(ctx, &ledgerv1.AuthorizeRequest{OrgId: "authz", Amount: money.ToProto(2500, "USD")})
			return err
		}},
		{"Debit (one hot org)", func(ctx context.Context, w int, _ *rand.Rand) error {
			_, err := ledger(w).Debit(ctx, &ledgerv1.DebitRequest{OrgId: "hot", Amount: money.ToProto(2500, "USD"), IdempotencyKey: fmt.Sprintf("h-%d", seq.Add(1)), Description: "bench call"})
			return err
		}},
		{"Debit (10,000 orgs)", amountScenario},
		{"Debit (usage-priced)", func(ctx context.Context, w int, r *rand.Rand) error {
			org := fmt.Sprintf("org-%05d", r.IntN(cfg.orgs))
			_, err := ledger(w).Debit(ctx, &ledgerv1.DebitRequest{OrgId: org, Usage: usage, IdempotencyKey: fmt.Sprintf("u-%d", seq.Add(1)), Description: "bench call"})
			return err
		}},
	}
	fmt.Printf("%d callers over %d connections, %s per scenario after %s warm-up, GOMAXPROCS=%d\n",
		cfg.callers, cfg.conns, cfg.duration, cfg.warmup, runtimeProcs())
	fmt.Printf("%-24s %12s %10s %10s %9s\n", "scenario", "ops/s", "p50", "p99", "ceiling")
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var ceiling, amountDebit float64
	for i, sc := range scenarios {
		if i > 0 && cfg.only != "" && !strings.Contains(sc.name, cfg.only) {
			continue
		}
		res, err := measure(ctx, cfg, sc.call)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		if i == 0 {
			ceiling = res.opsPerSec
		}
		extra := ""
		switch sc.name {
		case "Debit (10,000 orgs)":
			amountDebit = res.opsPerSec
		case "Debit (usage-priced)":
			if amountDebit > 0 {
				// The tables grow during the run, which favours whatever runs first: measure
				// amount debits again right after and compare with the mean of both runs.
				again, err := measure(ctx, cfg, amountScenario)
				if err != nil {
					return fmt.Errorf("amount debits again: %w", err)
				}
				mean := (amountDebit + again.opsPerSec) / 2
				extra = fmt.Sprintf("   %.0f%% of amount debits (%.0f and %.0f ops/s before and after)", 100*res.opsPerSec/mean, amountDebit, again.opsPerSec)
			}
		}
		fmt.Printf("%-24s %12.0f %10s %10s %8.0f%%%s\n", sc.name, res.opsPerSec, round(res.p50), round(res.p99), 100*res.opsPerSec/ceiling, extra)
	}
	return nil
}

type result struct {
	opsPerSec float64
	p50, p99  time.Duration
}

func measure(ctx context.Context, cfg benchConfig, call func(context.Context, int, *rand.Rand) error) (result, error) {
	var (
		wg       sync.WaitGroup
		measured atomic.Bool
		stopped  atomic.Bool
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
	)
	for w := range cfg.callers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			lat := make([]time.Duration, 0, 1<<16)
			for !stopped.Load() {
				start := time.Now()
				err := call(ctx, w, r)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if measured.Load() {
					lat = append(lat, time.Since(start))
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	time.Sleep(cfg.warmup)
	measured.Store(true)
	began := time.Now()
	time.Sleep(cfg.duration)
	measured.Store(false)
	elapsed := time.Since(began)
	stopped.Store(true)
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	if len(all) == 0 {
		return result{}, fmt.Errorf("no call completed")
	}
	slices.Sort(all)
	return result{
		opsPerSec: float64(len(all)) / elapsed.Seconds(),
		p50:       all[len(all)/2],
		p99:       all[len(all)*99/100],
	}, nil
}

// waitPriceList waits until the ledger has received the price list.
func waitPriceList(ctx context.Context, c ledgerv1.LedgerServiceClient, usage *ledgerv1.Usage) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := c.Authorize(ctx, &ledgerv1.AuthorizeRequest{OrgId: "authz", Usage: usage})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the ledger never received the price list: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitServing(ctx context.Context, conn *grpc.ClientConn) error {
	hc := grpc_health_v1.NewHealthClient(conn)
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ledger not serving: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func round(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	default:
		return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
	}
}
