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
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/clock"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/loadgen"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/services/instances-metering/internal/service"
	"github.com/tallyhq/tally/services/instances-metering/meteringtest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

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

func run(ctx context.Context, cfg benchConfig) error {
	b, err := startBench(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.stop(ctx)
	price, err := b.startRentals(ctx)
	if err != nil {
		return err
	}
	elapsed, err := b.chargeBoundaries(ctx)
	if err != nil {
		return err
	}
	if err := b.checkCharged(ctx, price); err != nil {
		return err
	}
	median := elapsed[len(elapsed)/2]
	fmt.Printf("rentals charged per second at a boundary: %.0f/s (%d rentals in %.2f s)\n",
		float64(cfg.rentals)/median.Seconds(), cfg.rentals, median.Seconds())
	return nil
}

// bench is the running stack: PostgreSQL, Redis, the ledger, pricing and the meter on loopback.
type bench struct {
	cfg        benchConfig
	stores     *loadgen.Stores
	ledgerSvc  *ledgertest.Ledger
	pricing    *pricingtest.Pricing
	meterSvc   *meteringtest.Meter
	clk        *clock.Manual // the meter's clock, frozen at an instant the benchmark sets
	t0         time.Time
	conns      []*grpc.ClientConn
	pool       *pgxpool.Pool
	ledger     ledgerv1.LedgerServiceClient
	meter      instancesv1.InstanceMeteringServiceClient
	progressOn bool
}

func (b *bench) progress(format string, args ...any) {
	if b.progressOn {
		fmt.Printf(format+"\n", args...)
	}
}

func startBench(ctx context.Context, cfg benchConfig) (_ *bench, err error) {
	out := io.Discard
	if cfg.logs {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stores, err := loadgen.StartStores(ctx, "bench-metering", cfg.dataDir, true, logger)
	if err != nil {
		return nil, err
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	b := &bench{cfg: cfg, stores: stores, clk: clock.NewManual(t0), t0: t0, progressOn: cfg.verbose}
	defer func() {
		if err != nil {
			b.stop(ctx)
		}
	}()
	ledgerAddr, meterAddr, err := b.startServices(ctx, logger)
	if err != nil {
		return nil, err
	}
	if err := b.dial(ctx, ledgerAddr, meterAddr); err != nil {
		return nil, err
	}
	return b, nil
}

// startServices runs the ledger, pricing and the meter (on the bench's clock) through their
// harnesses.
func (b *bench) startServices(ctx context.Context, logger *slog.Logger) (ledgerAddr, meterAddr string, err error) {
	pgURL := b.stores.PG.URL()
	b.ledgerSvc, err = ledgertest.New(ctx, ledgertest.Options{
		DatabaseURL: pgURL, RedisURL: b.stores.Redis.URL(), Logger: logger,
		SweepInterval: time.Second, CommitMaxBatch: 256, CommitWorkers: 2, PlatformShards: 16,
	})
	if err != nil {
		return "", "", err
	}
	b.pricing, err = pricingtest.New(ctx, pricingtest.Options{DatabaseURL: pgURL, Secret: ledgertest.Secret, PollInterval: 100 * time.Millisecond, Logger: logger})
	if err != nil {
		return "", "", err
	}
	b.meterSvc, err = meteringtest.New(ctx, meteringtest.Options{
		DatabaseURL: pgURL, Secret: ledgertest.Secret, LedgerAddr: b.ledgerSvc.Addr, PricingAddr: b.pricing.Addr,
		BillingPeriod: b.cfg.period, PollInterval: 10 * time.Millisecond, Now: b.clk.Now, Logger: logger,
		Configure: func(c *service.Config) {
			c.DBMaxConns = 32
			c.Workers, c.BatchSize, c.Concurrency = b.cfg.workers, b.cfg.batch, b.cfg.concurrency
		},
	})
	if err != nil {
		return "", "", err
	}
	return b.ledgerSvc.Addr, b.meterSvc.Addr, nil
}

// dial connects to the ledger as ops, to the meter as the metering service, and to PostgreSQL.
func (b *bench) dial(ctx context.Context, ledgerAddr, meterAddr string) error {
	serviceToken, err := auth.Mint([]byte(ledgertest.Secret), auth.Claims{Subject: "service:" + service.ServiceName, Roles: []auth.Role{auth.RoleService}}, time.Hour)
	if err != nil {
		return err
	}
	opsToken, err := auth.Mint([]byte(ledgertest.Secret), auth.Claims{Subject: "bench-ops", Roles: []auth.Role{auth.RoleOps}}, time.Hour)
	if err != nil {
		return err
	}
	ledgerConn, err := rpcclient.Dial(ledgerAddr, opsToken)
	if err != nil {
		return err
	}
	b.conns = append(b.conns, ledgerConn)
	meterConn, err := rpcclient.Dial(meterAddr, serviceToken)
	if err != nil {
		return err
	}
	b.conns = append(b.conns, meterConn)
	b.ledger, b.meter = ledgerv1.NewLedgerServiceClient(ledgerConn), instancesv1.NewInstanceMeteringServiceClient(meterConn)
	b.pool, err = pgxpool.New(ctx, b.stores.PG.URL())
	return err
}

func (b *bench) stop(ctx context.Context) {
	if b.pool != nil {
		b.pool.Close()
	}
	for _, c := range b.conns {
		_ = c.Close()
	}
	if b.meterSvc != nil {
		_ = b.meterSvc.Stop()
	}
	if b.pricing != nil {
		_ = b.pricing.Stop()
	}
	if b.ledgerSvc != nil {
		_ = b.ledgerSvc.Close()
	}
	b.stores.Stop(ctx)
}

func org(i int) string { return fmt.Sprintf("org-%05d", i) }

// startRentals credits every organization and starts one rental each; it returns the period price.
func (b *bench) startRentals(ctx context.Context) (money.Nanos, error) {
	n := b.cfg.rentals
	b.progress("crediting %d organizations…", n)
	if err := loadgen.Parallel(ctx, 64, n, func(i int) error {
		_, err := b.ledger.Credit(ctx, &ledgerv1.CreditRequest{OrgId: org(i), Amount: money.ToProto(1_000_000*money.NanosPerUnit, "USD"), IdempotencyKey: "seed"})
		return err
	}); err != nil {
		return 0, fmt.Errorf("crediting: %w", err)
	}
	b.progress("starting %d rentals…", n)
	var price money.Nanos
	began := time.Now()
	if err := loadgen.Parallel(ctx, 64, n, func(i int) error {
		resp, err := b.meter.StartMetering(ctx, &instancesv1.StartMeteringRequest{
			InstanceId: fmt.Sprintf("i-%05d", i), OrgId: org(i), InstanceType: "gpu-a10g-small", IdempotencyKey: "start",
		})
		if err == nil && i == 0 {
			m, _ := money.FromProto(resp.GetRental().GetPeriodPrice())
			price = m.Nanos
		}
		return err
	}); err != nil {
		return 0, fmt.Errorf("starting rentals: %w", err)
	}
	b.progress("started in %s (%.0f StartMetering/s)", time.Since(began).Round(time.Millisecond), float64(n)/time.Since(began).Seconds())
	return price, nil
}

// chargeBoundaries moves the meter's clock over each boundary and times until every rental paid
// it; it returns the times sorted.
func (b *bench) chargeBoundaries(ctx context.Context) ([]time.Duration, error) {
	var elapsed []time.Duration
	for n := 1; n <= b.cfg.boundaries; n++ {
		b.clk.Set(b.t0.Add(time.Duration(n) * b.cfg.period))
		began := time.Now()
		done := 0
		err := loadgen.Poll(ctx, 10*time.Minute, 5*time.Millisecond, func() (bool, error) {
			err := b.pool.QueryRow(ctx, `SELECT count(*) FROM instances.rentals WHERE periods_charged > $1`, n).Scan(&done)
			return done == b.cfg.rentals, err
		})
		if errors.Is(err, loadgen.ErrTimeout) {
			return nil, fmt.Errorf("boundary %d: only %d of %d rentals charged after 10 minutes", n, done, b.cfg.rentals)
		}
		if err != nil {
			return nil, err
		}
		d := time.Since(began)
		elapsed = append(elapsed, d)
		b.progress("boundary %d: %d rentals in %s", n, b.cfg.rentals, d.Round(time.Millisecond))
	}
	slices.Sort(elapsed)
	return elapsed, nil
}

// checkCharged verifies every rental paid exactly one period per boundary plus the first, at the
// locked price.
func (b *bench) checkCharged(ctx context.Context, price money.Nanos) error {
	var total, periods int64
	if err := b.pool.QueryRow(ctx, `SELECT coalesce(sum(total_charged), 0)::bigint, coalesce(sum(periods_charged), 0)::bigint FROM instances.rentals`).Scan(&total, &periods); err != nil {
		return err
	}
	want := int64(b.cfg.rentals) * int64(b.cfg.boundaries+1)
	if periods != want || money.Nanos(total) != money.Nanos(want)*price {
		return fmt.Errorf("charged %d periods for %s, want %d for %s", periods, money.Nanos(total).Display(), want, (money.Nanos(want) * price).Display())
	}
	return nil
}
