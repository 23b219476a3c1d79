package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/pkg/localstack"
)

// Stores is a private, durable PostgreSQL and a Redis for one benchmark run.
type Stores struct {
	PG    *localstack.Postgres
	Redis *localstack.Redis // nil unless asked for
}

// StartStores starts a fresh PostgreSQL (fsync and synchronous_commit on, like production) and, when
// withRedis, a Redis under dir, which is emptied first; "" is <repo>/.data/<name>.
func StartStores(ctx context.Context, name, dir string, withRedis bool, logger *slog.Logger) (*Stores, error) {
	if dir == "" {
		dir = DataDir(name)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	pg, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(dir, "pg"), Durable: true, Logger: logger})
	if err != nil {
		return nil, err
	}
	s := &Stores{PG: pg}
	if withRedis {
		s.Redis, err = localstack.StartRedis(ctx, localstack.RedisConfig{Dir: filepath.Join(dir, "redis"), Logger: logger})
		if err != nil {
			s.Stop(ctx)
			return nil, err
		}
	}
	return s, nil
}

// DataDir is the default data directory of a benchmark: <repo>/.data/<name>.
func DataDir(name string) string {
	return filepath.Join(filepath.Dir(localstack.BinDir()), ".data", name)
}

// Stop stops Redis and PostgreSQL, even when ctx is already done.
func (s *Stores) Stop(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if s.Redis != nil {
		_ = s.Redis.Stop(ctx)
	}
	_ = s.PG.Stop(ctx)
}

// ErrTimeout is returned by Poll when the condition did not hold in time.
var ErrTimeout = errors.New("condition not met in time")

// Poll calls cond every interval until it returns true or an error, for at most limit.
func Poll(ctx context.Context, limit, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Result is one measured scenario.
type Result struct {
	OpsPerSec float64
	P50, P99  time.Duration
}

// Call is one call of a scenario by worker w with its own random source.
type Call func(ctx context.Context, w int, r *rand.Rand) error

// Measure runs call from callers goroutines in a closed loop: warmup unmeasured, then duration
// measured. The first error stops the run.
func Measure(ctx context.Context, callers int, warmup, duration time.Duration, call Call) (Result, error) {
	var (
		wg       sync.WaitGroup
		measured atomic.Bool
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
	)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	for w := range callers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42)) //nolint:gosec // load shape, not security
			lat := make([]time.Duration, 0, 1<<16)
			for runCtx.Err() == nil {
				start := time.Now()
				if err := call(runCtx, w, r); err != nil {
					if runCtx.Err() != nil {
						break
					}
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					stop()
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
	elapsed, err := measureWindow(runCtx, warmup, duration, &measured)
	stop()
	wg.Wait()
	if firstErr != nil {
		return Result{}, firstErr
	}
	if err != nil {
		return Result{}, err
	}
	return summarize(all, elapsed)
}

// measureWindow waits out the warm-up, then flips measured on for duration.
func measureWindow(ctx context.Context, warmup, duration time.Duration, measured *atomic.Bool) (time.Duration, error) {
	if err := wait(ctx, warmup); err != nil {
		return 0, err
	}
	measured.Store(true)
	began := time.Now()
	err := wait(ctx, duration)
	measured.Store(false)
	return time.Since(began), err
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Latencies summarizes measured latencies: p50 and p99.
func Latencies(all []time.Duration) (p50, p99 time.Duration) {
	if len(all) == 0 {
		return 0, 0
	}
	slices.Sort(all)
	return all[len(all)/2], all[len(all)*99/100]
}

func summarize(all []time.Duration, elapsed time.Duration) (Result, error) {
	if len(all) == 0 {
		return Result{}, errors.New("no call completed")
	}
	p50, p99 := Latencies(all)
	return Result{OpsPerSec: float64(len(all)) / elapsed.Seconds(), P50: p50, P99: p99}, nil
}

// Round prints a latency: microseconds below a millisecond, else milliseconds with two decimals.
func Round(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
}
