// Command metering-bench is the instances-metering line of `make bench`. It starts a private,
// durable PostgreSQL and a Redis, runs the ledger, the pricing service and the meter on loopback,
// starts 10,000 rentals through StartMetering (one organization each) at one instant of the
// meter's clock, then moves that clock to the next period boundaries and times how long the
// scheduler takes to charge every rental through the ledger. It prints one line:
//
//	rentals charged per second at a boundary: N/s (10000 rentals in X s)
//
// (the median over the measured boundaries).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/loadgen"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	meterservice "github.com/tallyhq/tally/services/instances-metering/service"
	ledgerservice "github.com/tallyhq/tally/services/ledger/service"
	pricingservice "github.com/tallyhq/tally/services/pricing/service"
)

const secret = "metering-bench-secret-0123456789"

func main() {
	rentals := flag.Int("rentals", 10_000, "running rentals")
	boundaries := flag.Int("boundaries", 3, "period boundaries measured")
	period := flag.Duration("period", time.Hour, "billing period (the meter's clock jumps from boundary to boundary)")
	dataDir := flag.String("data", "", "data directory (default <repo>/.data/bench-metering)")
	verbose := flag.Bool("v", false, "print progress and every boundary")
	logs := flag.Bool("log", false, "print the services' warnings and errors on stderr")
	workers := flag.Int("workers", 0, "scheduler batches charged at once (0: the service default)")
	batch := flag.Int("batch", 0, "rentals claimed per batch (0: the service default)")
	concurrency := flag.Int("concurrency", 0, "ledger debits in flight per batch (0: the service default)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, benchConfig{*rentals, *boundaries, *period, *dataDir, *verbose, *logs, *workers, *batch, *concurrency}); err != nil {
		fmt.Fprintln(os.Stderr, "metering-bench:", err)
		os.Exit(1)
	}
}

type benchConfig struct {
	rentals, boundaries int
	period              time.Duration
	dataDir             string
	verbose, logs       bool
	// Scheduler tuning.
	workers, batch, concurrency int
}

// clock is the meter's clock, frozen at an instant the benchmark sets.
type clock struct{ nanos atomic.Int64 }

func (c *clock) now() time.Time   { return time.Unix(0, c.nanos.Load()).UTC() }
func (c *clock) set(t time.Time)  { c.nanos.Store(t.UnixNano()) }
func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }

func run(ctx context.Context, cfg benchConfig) error {
	var out io.Writer = io.Discard
	if cfg.logs {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	progress := func(format string, args ...any) {
		if cfg.verbose {
			fmt.Printf(format+"\n", args...)
		}
	}
	if cfg.dataDir == "" {
		cfg.dataDir = filepath.Join(filepath.Dir(localstack.BinDir()), ".data", "bench-metering")
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

	authCfg := server.AuthConfig{JWTSecret: secret}
	serviceToken, err := auth.Mint([]byte(secret), auth.Claims{Subject: "service:" + meterservice.ServiceName, Roles: []auth.Role{auth.RoleService}}, time.Hour)
	if err != nil {
		return err
	}
	opsToken, err := auth.Mint([]byte(secret), auth.Claims{Subject: "bench-ops", Roles: []auth.Role{auth.RoleOps}}, time.Hour)
	if err != nil {
		return err
	}
	sctx, stopServices := context.WithCancel(ctx)
	var services sync.WaitGroup
	defer func() { stopServices(); services.Wait() }()
	serve := func(name string, runService func(net.Listener) error) (string, error) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		services.Go(func() {
			if err := runService(lis); err != nil && !errors.Is(err, context.Canceled) && sctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "metering-bench: %s stopped: %v\n", name, err)
			}
		})
		return lis.Addr().String(), nil
	}
	ledgerAddr, err := serve("ledger", func(lis net.Listener) error {
		return ledgerservice.Run(sctx, ledgerservice.Config{
			DatabaseURL: pg.URL(), RedisURL: rds.URL(), Auth: authCfg, DefaultCurrency: "USD",
			CreditValidity: config.Period{Months: 3}, SweepInterval: time.Second,
			CommitMaxBatch: 256, CommitWorkers: 2, PlatformShards: 16, DBMaxConns: 20,
		}, lis, logger)
	})
	if err != nil {
		return err
	}
	pricingAddr, err := serve("pricing", func(lis net.Listener) error {
		return pricingservice.Run(sctx, pricingservice.Config{DatabaseURL: pg.URL(), PollInterval: 100 * time.Millisecond, Auth: authCfg}, lis, logger)
	})
	if err != nil {
		return err
	}
	if err := waitServing(ctx, ledgerAddr); err != nil {
		return err
	}
	if err := waitServing(ctx, pricingAddr); err != nil {
		return err
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	clk := newClock(t0)
	meterAddr, err := serve("instances-metering", func(lis net.Listener) error {
		return meterservice.Run(sctx, meterservice.Config{
			DatabaseURL: pg.URL(), DBMaxConns: 32, Auth: authCfg, LedgerAddr: ledgerAddr, PricingAddr: pricingAddr,
			BillingPeriod: cfg.period, PollInterval: 10 * time.Millisecond, Now: clk.now,
			Workers: cfg.workers, BatchSize: cfg.batch, Concurrency: cfg.concurrency,
		}, lis, logger)
	})
	if err != nil {
		return err
	}
	if err := waitServing(ctx, meterAddr); err != nil {
		return err
	}

	ledgerConn, err := rpcclient.Dial(ledgerAddr, opsToken)
	if err != nil {
		return err
	}
	defer func() { _ = ledgerConn.Close() }()
	meterConn, err := rpcclient.Dial(meterAddr, serviceToken)
	if err != nil {
		return err
	}
	defer func() { _ = meterConn.Close() }()
	ledger, meter := ledgerv1.NewLedgerServiceClient(ledgerConn), instancesv1.NewInstanceMeteringServiceClient(meterConn)

	org := func(i int) string { return fmt.Sprintf("org-%05d", i) }
	progress("crediting %d organizations…", cfg.rentals)
	if err := loadgen.Parallel(ctx, 64, cfg.rentals, func(i int) error {
		_, err := ledger.Credit(ctx, &ledgerv1.CreditRequest{OrgId: org(i), Amount: money.ToProto(1_000_000*money.NanosPerUnit, "USD"), IdempotencyKey: "seed"})
		return err
	}); err != nil {
		return fmt.Errorf("crediting: %w", err)
	}
	progress("starting %d rentals…", cfg.rentals)
	var price money.Nanos
	began := time.Now()
	if err := loadgen.Parallel(ctx, 64, cfg.rentals, func(i int) error {
		resp, err := meter.StartMetering(ctx, &instancesv1.StartMeteringRequest{
			InstanceId: fmt.Sprintf("i-%05d", i), OrgId: org(i), InstanceType: "gpu-a10g-small", IdempotencyKey: "start",
		})
		if err == nil && i == 0 {
			m, _ := money.FromProto(resp.GetRental().GetPeriodPrice())
			price = m.Nanos
		}
		return err
	}); err != nil {
		return fmt.Errorf("starting rentals: %w", err)
	}
	progress("started in %s (%.0f StartMetering/s)", time.Since(began).Round(time.Millisecond), float64(cfg.rentals)/time.Since(began).Seconds())

	pool, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		return err
	}
	defer pool.Close()
	var elapsed []time.Duration
	for b := 1; b <= cfg.boundaries; b++ {
		clk.set(t0.Add(time.Duration(b) * cfg.period))
		began := time.Now()
		for {
			var done int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM instances.rentals WHERE periods_charged > $1`, b).Scan(&done); err != nil {
				return err
			}
			if done == cfg.rentals {
				break
			}
			if time.Since(began) > 10*time.Minute {
				return fmt.Errorf("boundary %d: only %d of %d rentals charged after 10 minutes", b, done, cfg.rentals)
			}
			time.Sleep(5 * time.Millisecond)
		}
		d := time.Since(began)
		elapsed = append(elapsed, d)
		progress("boundary %d: %d rentals in %s", b, cfg.rentals, d.Round(time.Millisecond))
	}
	// Every rental paid exactly one period per boundary plus the first, at the locked price.
	var total, periods int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(total_charged), 0)::bigint, coalesce(sum(periods_charged), 0)::bigint FROM instances.rentals`).Scan(&total, &periods); err != nil {
		return err
	}
	want := int64(cfg.rentals) * int64(cfg.boundaries+1)
	if periods != want || money.Nanos(total) != money.Nanos(want)*price {
		return fmt.Errorf("charged %d periods for %s, want %d for %s", periods, money.Nanos(total).Display(), want, (money.Nanos(want) * price).Display())
	}
	slices.Sort(elapsed)
	median := elapsed[len(elapsed)/2]
	fmt.Printf("rentals charged per second at a boundary: %.0f/s (%d rentals in %.2f s)\n",
		float64(cfg.rentals)/median.Seconds(), cfg.rentals, median.Seconds())
	return nil
}

func waitServing(ctx context.Context, addr string) error {
	conn, err := rpcclient.Dial(addr, "")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	hc := grpc_health_v1.NewHealthClient(conn)
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not serving: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
