package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/client"
	"github.com/tallyhq/tally/pkg/loadgen"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// sdkScenarios measure pkg/client against the ledger: blocking Debit calls batched by the SDK
// onto DebitStream (10,000 orgs, one hot org), and a credit lease's local Authorize.
func (b *bench) sdkScenarios() []scenario {
	spread := func(r *rand.Rand) string { return fmt.Sprintf("org-%05d", r.IntN(b.cfg.orgs)) }
	return []scenario{
		{name: "SDK DebitStream (10,000 orgs)", run: b.sdkDebitScenario(spread)},
		{name: "SDK DebitStream (one hot org)", run: b.sdkDebitScenario(func(*rand.Rand) string { return "hot" })},
		{name: "SDK lease Authorize (in-process)", run: func(ctx context.Context) (loadgen.Result, string, error) {
			res, err := b.leaseAuthorizeScenario(ctx)
			return res, "", err
		}},
	}
}

// sdkClient is a pkg/client Client of the bench's ledger with the bench's streams and batches
// (the SDK's defaults otherwise: 500 µs linger, the ledger's window); reg receives its metrics.
func (b *bench) sdkClient(reg prometheus.Registerer) (*client.Client, error) {
	token, err := auth.Mint([]byte(ledgertest.Secret), auth.Claims{Subject: "service:bench-sdk", Roles: []auth.Role{auth.RoleService}}, time.Hour)
	if err != nil {
		return nil, err
	}
	return client.New(client.Config{Target: b.ledgerSvc.Addr, Token: token, Timeout: 10 * time.Second, Registerer: reg,
		Batch: client.BatchPolicy{Streams: b.cfg.streams, MaxSize: b.cfg.streamBatch, MaxInFlight: b.cfg.streamInFlight}})
}

// sdkDebitScenario measures -sdkcallers goroutines each calling Debit in a closed loop, as a
// model server's requests each wait for their own durable ack (-sdkcallers is the requests in
// flight across the backend's processes); a debit's latency is the Debit call's, queueing in the
// SDK included, so its mean is at least the callers over the throughput (Little's law). Its extra
// says the SDK's debits in flight on the streams (sampled) and its mean batch.
func (b *bench) sdkDebitScenario(org func(*rand.Rand) string) func(context.Context) (loadgen.Result, string, error) {
	return func(ctx context.Context) (loadgen.Result, string, error) {
		reg := prometheus.NewRegistry()
		c, err := b.sdkClient(reg)
		if err != nil {
			return loadgen.Result{}, "", err
		}
		defer func() { _ = c.Close(context.WithoutCancel(ctx)) }()
		amount := money.Money{Nanos: 2500, Currency: "USD"}
		sampleCtx, stopSampling := context.WithCancel(ctx)
		inflight := make(chan float64, 1)
		go func() { inflight <- sampleInFlight(sampleCtx, reg, b.cfg.warmup) }()
		res, err := closedLoop(ctx, b.cfg.sdkCallers, b.cfg.warmup, b.cfg.duration, func(ctx context.Context, r *rand.Rand) error {
			_, err := c.Debit(ctx, client.Debit{OrgID: org(r), Amount: amount, IdempotencyKey: fmt.Sprintf("sdk-%d", b.seq.Add(1)), Description: "bench call"})
			return err
		})
		stopSampling()
		mean := <-inflight
		batch := gathered(reg, "tally_client_stream_batch_size", func(m *dto.Metric) float64 {
			return m.GetHistogram().GetSampleSum() / max(float64(m.GetHistogram().GetSampleCount()), 1)
		})
		return res, fmt.Sprintf("   %d callers; in flight per stream: %.0f (%d streams, the ledger's window), mean batch %.0f",
			b.cfg.sdkCallers, mean/float64(b.cfg.streams), b.cfg.streams, batch), err
	}
}

// sampleInFlight returns the mean of the SDK's tally_client_stream_in_flight, sampled every
// 10 ms after warmup until ctx ends.
func sampleInFlight(ctx context.Context, reg *prometheus.Registry, warmup time.Duration) float64 {
	if sleepCtx(ctx, warmup) != nil {
		return 0
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var sum, n float64
	for {
		select {
		case <-ctx.Done():
			return sum / max(n, 1)
		case <-tick.C:
			sum += gathered(reg, "tally_client_stream_in_flight", func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
			n++
		}
	}
}

// gathered is value of the first metric of the family name in reg (0 when there is none).
func gathered(reg *prometheus.Registry, name string, value func(*dto.Metric) float64) float64 {
	families, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return value(f.GetMetric()[0])
		}
	}
	return 0
}

// leaseAuthorizeScenario measures a lease's Authorize from GOMAXPROCS goroutines: no round
// trip, so no per-call latency list (one call in 1,024 is timed for p50/p99).
func (b *bench) leaseAuthorizeScenario(ctx context.Context) (loadgen.Result, error) {
	c, err := b.sdkClient(nil)
	if err != nil {
		return loadgen.Result{}, err
	}
	defer func() { _ = c.Close(context.WithoutCancel(ctx)) }()
	lease, err := c.Lease(ctx, client.LeaseConfig{OrgID: "authz", HoldAmount: 1000 * money.NanosPerUnit})
	if err != nil {
		return loadgen.Result{}, err
	}
	defer func() { _ = lease.Close(context.WithoutCancel(ctx)) }()
	var (
		measuring, stop atomic.Bool
		count           atomic.Int64
		wg              sync.WaitGroup
		mu              sync.Mutex
		samples         []time.Duration
		refused         atomic.Bool
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var local []time.Duration
			for !stop.Load() {
				start := time.Now()
				if !lease.Authorize(2500) {
					refused.Store(true)
					return
				}
				sample := time.Since(start)
				for range 1023 {
					if !lease.Authorize(2500) {
						refused.Store(true)
						return
					}
				}
				if measuring.Load() {
					count.Add(1024)
					local = append(local, sample)
				}
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		})
	}
	err = sleepCtx(ctx, b.cfg.warmup)
	began := time.Now()
	if err == nil {
		measuring.Store(true)
		err = sleepCtx(ctx, b.cfg.duration)
		measuring.Store(false)
	}
	elapsed := time.Since(began)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return loadgen.Result{}, err
	}
	if refused.Load() || len(samples) == 0 {
		return loadgen.Result{}, errors.New("the lease refused an authorisation it had the hold for")
	}
	p50, p99 := loadgen.Latencies(samples)
	return loadgen.Result{OpsPerSec: float64(count.Load()) / elapsed.Seconds(), P50: p50, P99: p99}, nil
}

// closedLoop is loadgen.Measure for thousands of callers: no per-caller preallocation.
func closedLoop(ctx context.Context, callers int, warmup, duration time.Duration, call func(context.Context, *rand.Rand) error) (loadgen.Result, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		measuring atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		all       []time.Duration
		firstErr  error
	)
	for w := range callers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99)) //nolint:gosec // load shape, not security
			var lat []time.Duration
			for runCtx.Err() == nil {
				start := time.Now()
				if err := call(runCtx, r); err != nil {
					if runCtx.Err() == nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
					}
					break
				}
				if measuring.Load() {
					lat = append(lat, time.Since(start))
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	err := sleepCtx(runCtx, warmup)
	began := time.Now()
	if err == nil {
		measuring.Store(true)
		err = sleepCtx(runCtx, duration)
		measuring.Store(false)
	}
	elapsed := time.Since(began)
	cancel()
	wg.Wait()
	if firstErr != nil {
		return loadgen.Result{}, firstErr
	}
	if err != nil {
		return loadgen.Result{}, err
	}
	if len(all) == 0 {
		return loadgen.Result{}, errors.New("no call completed")
	}
	p50, p99 := loadgen.Latencies(all)
	return loadgen.Result{OpsPerSec: float64(len(all)) / elapsed.Seconds(), P50: p50, P99: p99}, nil
}
