// Command ledger-bench is `make bench`: it starts a private, durable PostgreSQL and a Redis, runs
// the ledger on loopback, and drives it over real gRPC with 64 concurrent callers, printing
// ops/s, p50 and p99 per scenario and each scenario's ratio to a no-op gRPC call (the ceiling).
// The last scenarios run with Redis stopped, then paused (SIGSTOP), and print their ratio to the
// same scenario with Redis up and how soon the cache serves again once Redis is back; a final
// PostgreSQL restart prints how soon debits commit again.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/loadgen"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/services/ledger/internal/service"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "measured time per scenario")
	warmup := flag.Duration("warmup", time.Second, "unmeasured time before each scenario")
	callers := flag.Int("callers", 64, "concurrent callers")
	conns := flag.Int("conns", 4, "gRPC connections shared by the callers")
	orgs := flag.Int("orgs", 10_000, "organizations of the spread debit scenario")
	dataDir := flag.String("data", "", "data directory (default <repo>/.data/bench)")
	only := flag.String("only", "", "run only the scenarios whose name contains this, or one of these separated by |, =name for exactly that one (the ceiling always runs)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured scenarios to this file")
	workers := flag.Int("workers", 1, "the ledger's commit workers (TALLY_COMMIT_WORKERS)")
	maxWait := flag.Duration("maxwait", 0, "the ledger's commit wait (TALLY_COMMIT_MAX_WAIT)")
	maxBatch := flag.Int("maxbatch", 256, "the ledger's commit batch bound (TALLY_COMMIT_MAX_BATCH)")
	streams := flag.Int("streams", 8, "DebitStream streams of the stream scenarios")
	streamBatch := flag.Int("streambatch", 500, "most debits per DebitStream message")
	streamInFlight := flag.Int("streaminflight", 0, "cap on the unacknowledged debits per stream (0: the window the ledger grants, as pkg/client follows it)")
	ackTarget := flag.Duration("acktarget", 0, "the ledger's stream acknowledgement target (TALLY_STREAM_ACK_TARGET, 0: its default)")
	sdkCallers := flag.Int("sdkcallers", 512, "concurrent Debit calls of the SDK scenarios (a backend's requests waiting for their debit's ack)")
	tables := flag.Bool("tables", false, "print each debit scenario's rows per debit table by table")
	walCompression := flag.String("walcompression", "", "PostgreSQL's wal_compression for the run (off, pglz, lz4, zstd; default the server's)")
	shards := flag.Bool("shards", false, "compare durable debits on 1 and 2 ledger shards (shards.go) instead of the scenarios")
	flag.Parse()
	// go-redis logs every failed dial; the ledger reports a Redis outage itself, once.
	redis.SetLogger(discardRedisLog{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := benchConfig{*duration, *warmup, *callers, *conns, *orgs, *dataDir, *only, *cpuProfile, *workers, *maxWait, *maxBatch, *streams, *streamBatch, *streamInFlight, *ackTarget, *sdkCallers, *tables, *walCompression}
	bench := run
	if *shards {
		bench = runShardCompare
	}
	if err := bench(ctx, cfg); err != nil {
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
	maxBatch         int
	streams          int
	streamBatch      int
	streamInFlight   int
	ackTarget        time.Duration
	sdkCallers       int
	tables           bool
	walCompression   string
}

func run(ctx context.Context, cfg benchConfig) error {
	b, err := startBench(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.stop(ctx)
	if err := b.seed(ctx); err != nil {
		return err
	}
	fmt.Printf("%d callers over %d connections, %s per scenario after %s warm-up, GOMAXPROCS=%d\n",
		cfg.callers, cfg.conns, cfg.duration, cfg.warmup, runtimeProcs())
	fmt.Printf("%-36s %12s %10s %10s %9s%s\n", "scenario", "ops/s", "p50", "p99", "ceiling", costHeader)
	stopProfile, err := startProfile(cfg.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if err := b.runScenarios(ctx); err != nil {
		return err
	}
	if cfg.only == "" || selected("PostgreSQL restart", cfg.only) {
		back, took, err := postgresRecovery(ctx, b.stores.PG, b.ledger(0), &b.seq)
		if err != nil {
			return fmt.Errorf("PostgreSQL restart: %w", err)
		}
		fmt.Printf("PostgreSQL restart (%s): debits commit again %s after it accepts connections\n", loadgen.Round(took), loadgen.Round(back))
	}
	return nil
}

// bench is the running stack: PostgreSQL, Redis, pricing and the ledger on loopback, and the
// callers' connections.
type bench struct {
	cfg        benchConfig
	stores     *loadgen.Stores
	pricing    *pricingtest.Pricing
	ledgerSvc  *ledgertest.Ledger
	clients    []*grpc.ClientConn
	metricsURL string
	meter      *costMeter
	usage      *ledgerv1.Usage
	seq        atomic.Int64
}

func startBench(ctx context.Context, cfg benchConfig) (_ *bench, err error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	stores, err := loadgen.StartStores(ctx, "bench", cfg.dataDir, true, logger)
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, stores: stores,
		usage: &ledgerv1.Usage{ModelId: "llama-3.1-8b-instruct", Quantities: map[string]string{"input_tokens": "1200", "output_tokens": "350"}}}
	defer func() {
		if err != nil {
			b.stop(ctx)
		}
	}()
	if err := enableStatements(ctx, stores.PG); err != nil {
		return nil, err
	}
	addr, err := b.startServices(ctx, logger)
	if err != nil {
		return nil, err
	}
	if b.meter, err = newCostMeter(ctx, stores.PG.URL(), stores.PG.Dir()); err != nil {
		return nil, err
	}
	if cfg.walCompression != "" {
		if err := b.meter.setWALCompression(ctx, cfg.walCompression); err != nil {
			return nil, err
		}
	}
	token, err := auth.Mint([]byte(ledgertest.Secret), auth.Claims{Subject: "bench", Roles: []auth.Role{auth.RoleService, auth.RoleOps}}, time.Hour)
	if err != nil {
		return nil, err
	}
	for range cfg.conns {
		c, err := rpcclient.Dial(addr, token)
		if err != nil {
			return nil, err
		}
		b.clients = append(b.clients, c)
	}
	return b, nil
}

// startServices runs pricing (for usage-priced debits: the ledger follows its price list in memory)
// and the ledger through their harnesses, and returns the ledger's address.
func (b *bench) startServices(ctx context.Context, logger *slog.Logger) (string, error) {
	var err error
	b.pricing, err = pricingtest.New(ctx, pricingtest.Options{DatabaseURL: b.stores.PG.URL(), Secret: ledgertest.Secret,
		PollInterval: 200 * time.Millisecond, Logger: logger})
	if err != nil {
		return "", err
	}
	b.ledgerSvc, err = ledgertest.New(ctx, ledgertest.Options{
		DatabaseURL: b.stores.PG.URL(), RedisURL: b.stores.Redis.URL(), Logger: logger, PricingAddr: b.pricing.Addr,
		Metrics: true, SweepInterval: time.Second, PlatformShards: 16,
		CommitMaxBatch: b.cfg.maxBatch, CommitWorkers: b.cfg.workers, CommitMaxWait: b.cfg.maxWait,
		// The production default, not the harness's 20ms: the follower's load is part of the bench.
		Configure: func(c *service.Config) { c.UsageInterval, c.StreamAckTarget = 0, b.cfg.ackTarget },
	})
	if err != nil {
		return "", err
	}
	b.metricsURL = b.ledgerSvc.MetricsURL
	return b.ledgerSvc.Addr, nil
}

func (b *bench) stop(ctx context.Context) {
	for _, c := range b.clients {
		_ = c.Close()
	}
	if b.meter != nil {
		b.meter.close()
	}
	if b.ledgerSvc != nil {
		_ = b.ledgerSvc.Close()
	}
	if b.pricing != nil {
		_ = b.pricing.Stop()
	}
	b.stores.Stop(ctx)
}

func (b *bench) ledger(i int) ledgerv1.LedgerServiceClient {
	return ledgerv1.NewLedgerServiceClient(b.clients[i%len(b.clients)])
}

// seed credits the hot org, the authorize org and every spread org, and waits for the price list.
func (b *bench) seed(ctx context.Context) error {
	fmt.Printf("seeding %d organizations…\n", b.cfg.orgs+2)
	seed := func(org string) error {
		_, err := b.ledger(0).Credit(ctx, &ledgerv1.CreditRequest{OrgId: org, Amount: money.ToProto(1_000_000*money.NanosPerUnit, "USD"), IdempotencyKey: "seed"})
		return err
	}
	if err := loadgen.Parallel(ctx, 64, b.cfg.orgs, func(i int) error { return seed(fmt.Sprintf("org-%05d", i)) }); err != nil {
		return err
	}
	for _, org := range []string{"hot", "authz"} {
		if err := seed(org); err != nil {
			return err
		}
	}
	return waitPriceList(ctx, b.ledger(0), b.usage)
}

// fault takes Redis down for a scenario and brings it back afterwards.
type fault struct{ down, up func() error }

type scenario struct {
	name  string
	call  loadgen.Call
	fault *fault
	// run, when set, measures the scenario instead of call (streams: no call per debit).
	run func(context.Context) (loadgen.Result, string, error)
}

func (b *bench) debit(org, prefix string, usage *ledgerv1.Usage, amount money.Nanos) func(context.Context, int) error {
	return func(ctx context.Context, w int) error {
		req := &ledgerv1.DebitRequest{OrgId: org, IdempotencyKey: fmt.Sprintf("%s-%d", prefix, b.seq.Add(1)), Description: "bench call"}
		if usage != nil {
			req.Usage = usage
		} else {
			req.Amount = money.ToProto(amount, "USD")
		}
		_, err := b.ledger(w).Debit(ctx, req)
		return err
	}
}

func (b *bench) amountDebit(ctx context.Context, w int, r *rand.Rand) error {
	return b.debit(fmt.Sprintf("org-%05d", r.IntN(b.cfg.orgs)), "s", nil, 2500)(ctx, w)
}

func (b *bench) scenarios(ctx context.Context) []scenario {
	authorize := func(ctx context.Context, w int, _ *rand.Rand) error {
		_, err := b.ledger(w).Authorize(ctx, &ledgerv1.AuthorizeRequest{OrgId: "authz", Amount: money.ToProto(2500, "USD")})
		return err
	}
	// Redis faults: the scenario runs with Redis stopped or paused; afterwards Redis is brought
	// back and the time until Authorize is served from the cache again is measured.
	rds := b.stores.Redis
	stopped := &fault{func() error { return rds.Stop(ctx) }, func() error { return rds.Restart(ctx) }}
	paused := &fault{rds.Pause, rds.Resume}
	hot := b.debit("hot", "h", nil, 2500)
	return []scenario{
		{"no-op gRPC (ceiling)", func(ctx context.Context, w int, _ *rand.Rand) error {
			_, err := grpc_health_v1.NewHealthClient(b.clients[w%len(b.clients)]).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
			return err
		}, nil, nil},
		{"Authorize", authorize, nil, nil},
		{"Debit (one hot org)", func(ctx context.Context, w int, _ *rand.Rand) error { return hot(ctx, w) }, nil, nil},
		{"Debit (10,000 orgs)", b.amountDebit, nil, nil},
		{"Debit (usage-priced)", func(ctx context.Context, w int, r *rand.Rand) error {
			return b.debit(fmt.Sprintf("org-%05d", r.IntN(b.cfg.orgs)), "u", b.usage, 0)(ctx, w)
		}, nil, nil},
		{name: "DebitStream (10,000 orgs)", run: b.streamScenario(streamLoad{streams: b.cfg.streams, batch: b.cfg.streamBatch, inflight: b.cfg.streamInFlight,
			next: func(r *rand.Rand) string { return fmt.Sprintf("org-%05d", r.IntN(b.cfg.orgs)) }})},
		{name: "DebitStream (one hot org)", run: b.streamScenario(streamLoad{streams: b.cfg.streams, batch: b.cfg.streamBatch, inflight: b.cfg.streamInFlight,
			next: func(*rand.Rand) string { return "hot" }})},
		{"Authorize (Redis stopped)", authorize, stopped, nil},
		{"Debit (10,000 orgs, Redis stopped)", b.amountDebit, stopped, nil},
		{"Authorize (Redis paused)", authorize, paused, nil},
		{"Debit (10,000 orgs, Redis paused)", b.amountDebit, paused, nil},
	}
}

func (b *bench) measure(ctx context.Context, call loadgen.Call) (loadgen.Result, error) {
	return loadgen.Measure(ctx, b.cfg.callers, b.cfg.warmup, b.cfg.duration, call)
}

// runScenarios measures every scenario (or those -only names) and prints one line each.
func (b *bench) runScenarios(ctx context.Context) error {
	var ceiling, amountDebit float64
	// Let the seeding's table statistics settle, so that the first scenario is not charged for them.
	if err := b.meter.start(ctx); err != nil {
		return err
	}
	if _, err := b.meter.stop(ctx); err != nil {
		return err
	}
	for i, sc := range append(b.scenarios(ctx), b.sdkScenarios()...) { // SDK scenarios: sdk.go
		if i > 0 && b.cfg.only != "" && !selected(sc.name, b.cfg.only) {
			continue
		}
		counted, err := b.countCalls(ctx, &sc)
		if err != nil {
			return err
		}
		res, extra, c, err := b.measured(ctx, func() (loadgen.Result, string, error) { return b.runScenario(ctx, sc, amountDebit) })
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		if extra, err = counted(&c, extra); err != nil {
			return err
		}
		if i == 0 {
			ceiling = res.OpsPerSec
		}
		if sc.name == "Debit (10,000 orgs)" {
			amountDebit = res.OpsPerSec
		}
		fmt.Printf("%-36s %12.0f %10s %10s %8.0f%% %s%s\n", sc.name, res.OpsPerSec, loadgen.Round(res.P50), loadgen.Round(res.P99), 100*res.OpsPerSec/ceiling, c, extra)
		if b.cfg.tables {
			if line := c.perTable(); line != "" {
				fmt.Println(line)
			}
		}
		if line := c.statements(); line != "" {
			fmt.Println(line)
		}
	}
	return nil
}

// countCalls counts the calls of a scenario made of calls (no fault, no run of its own) and the
// commands Redis processes meanwhile; the returned func puts the count into c and appends the
// Redis commands per call to the scenario's extra.
func (b *bench) countCalls(ctx context.Context, sc *scenario) (func(c *cost, extra string) (string, error), error) {
	if sc.call == nil || sc.fault != nil {
		return func(_ *cost, extra string) (string, error) { return extra, nil }, nil
	}
	before, err := readRedisStats(ctx, b.stores.Redis.URL())
	if err != nil {
		return nil, err
	}
	var calls atomic.Int64
	call := sc.call
	sc.call = func(ctx context.Context, w int, r *rand.Rand) error { calls.Add(1); return call(ctx, w, r) }
	return func(c *cost, extra string) (string, error) {
		after, err := readRedisStats(ctx, b.stores.Redis.URL())
		if err != nil {
			return extra, err
		}
		c.calls = calls.Load()
		if c.calls == 0 {
			return extra, nil
		}
		n := float64(c.calls)
		return extra + fmt.Sprintf("   Redis per call: %.3f commands, %.3f round trips", float64(after.commands-before.commands)/n, float64(after.reads-before.reads)/n), nil
	}, nil
}

// runScenario measures one scenario; extra is the comparison printed after it.
func (b *bench) runScenario(ctx context.Context, sc scenario, amountDebit float64) (loadgen.Result, string, error) {
	if sc.fault != nil {
		return b.runFault(ctx, sc)
	}
	if sc.run != nil {
		return sc.run(ctx)
	}
	res, err := b.measure(ctx, sc.call)
	if err != nil || sc.name != "Debit (usage-priced)" || amountDebit == 0 {
		return res, "", err
	}
	// The tables grow during the run, which favours whatever runs first: measure amount debits
	// again right after and compare with the mean of both runs.
	again, err := b.measure(ctx, b.amountDebit)
	if err != nil {
		return res, "", fmt.Errorf("amount debits again: %w", err)
	}
	mean := (amountDebit + again.OpsPerSec) / 2
	return res, fmt.Sprintf("   %.0f%% of amount debits (%.0f and %.0f ops/s before and after)", 100*res.OpsPerSec/mean, amountDebit, again.OpsPerSec), nil
}

// runFault measures the scenario with Redis up (right before: this shared machine drifts too much
// for a comparison with the earlier scenarios), then with the fault, then how soon the cache serves.
func (b *bench) runFault(ctx context.Context, sc scenario) (loadgen.Result, string, error) {
	up, err := b.measure(ctx, sc.call)
	if err != nil {
		return up, "", fmt.Errorf("with Redis up: %w", err)
	}
	if err := sc.fault.down(); err != nil {
		return up, "", err
	}
	res, err := b.measure(ctx, sc.call)
	if err != nil {
		return res, "", err
	}
	if err := sc.fault.up(); err != nil {
		return res, "", err
	}
	back, err := cacheRecovery(ctx, b.ledger(0), b.metricsURL)
	if err != nil {
		return res, "", err
	}
	return res, fmt.Sprintf("   %.0f%% of Redis up (%.0f ops/s, p99 %s just before); cache serves again %s after Redis is back",
		100*res.OpsPerSec/up.OpsPerSec, up.OpsPerSec, loadgen.Round(up.P99), loadgen.Round(back)), nil
}

// startProfile starts a CPU profile into path ("" = none); the returned func stops it.
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path) //nolint:gosec // the path is the operator's -cpuprofile flag
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// cacheRecovery measures how long after Redis is back Authorize is answered from the cache
// again (tally_ledger_authorize_source_total{source="cache"} moves).
func cacheRecovery(ctx context.Context, c ledgerv1.LedgerServiceClient, metricsURL string) (time.Duration, error) {
	start := time.Now()
	before, err := cacheAnswers(ctx, metricsURL)
	if err != nil {
		return 0, err
	}
	for time.Since(start) < time.Minute {
		if _, err := c.Authorize(ctx, &ledgerv1.AuthorizeRequest{OrgId: "authz", Amount: money.ToProto(2500, "USD")}); err != nil {
			return 0, err
		}
		n, err := cacheAnswers(ctx, metricsURL)
		if err != nil {
			return 0, err
		}
		if n > before {
			return time.Since(start), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, errors.New("authorize was never answered from the cache again")
}

// cacheAnswers sums the ledger's Authorize answers taken from the cache.
func cacheAnswers(ctx context.Context, metricsURL string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "tally_ledger_authorize_source_total{") && strings.Contains(line, `source="cache"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				return 0, err
			}
			sum += v
		}
	}
	return sum, sc.Err()
}

// postgresRecovery restarts PostgreSQL and measures how long after it accepts connections
// again a debit commits (took: the restart itself).
func postgresRecovery(ctx context.Context, pg *localstack.Postgres, c ledgerv1.LedgerServiceClient, seq *atomic.Int64) (back, took time.Duration, err error) {
	began := time.Now()
	if err := pg.Restart(ctx); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	took = start.Sub(began)
	for time.Since(start) < time.Minute {
		_, err := c.Debit(ctx, &ledgerv1.DebitRequest{OrgId: "hot", Amount: money.ToProto(2500, "USD"), IdempotencyKey: fmt.Sprintf("pg-%d", seq.Add(1))})
		if err == nil {
			return time.Since(start), took, nil
		}
		if status.Code(err) != codes.Unavailable {
			return 0, 0, fmt.Errorf("a debit after the restart failed with %w, not Unavailable", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, 0, errors.New("debits never committed again")
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

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// selected says whether the scenario name is among those of -only: it contains one of its
// |-separated parts.
func selected(name, only string) bool {
	for _, part := range strings.Split(only, "|") {
		if exact, ok := strings.CutPrefix(part, "="); ok && name == exact {
			return true
		}
		if part != "" && strings.Contains(name, part) {
			return true
		}
	}
	return false
}
