package balancecache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/tallyhq/tally/pkg/telemetry"
)

// ClientConfig configures NewClient.
type ClientConfig struct {
	URL string
	// Timeout bounds dialing and every command (default 50ms).
	Timeout time.Duration
	// OnNewServer is called on a new connection, before it is used, when it reaches another
	// Redis server than the connections before it (by run_id: a restart, maybe from an older
	// snapshot, or a failover to a replica), and on the very first connection. Whatever the
	// cache held before may be older than PostgreSQL from then on.
	OnNewServer func()
	// Telemetry makes a span of every command of a traced call (nil: none).
	Telemetry *telemetry.Telemetry
}

// NewClient returns a Redis client for the cache that fails fast (no retries, every call and
// dial bounded by the timeout) and reports server changes to OnNewServer.
func NewClient(cfg ClientConfig) (*redis.Client, error) {
	if cfg.OnNewServer == nil {
		return nil, errors.New("balancecache: OnNewServer is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing REDIS_URL: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout, cfg.Timeout
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.PoolSize = 64
	w := &serverWatch{changed: cfg.OnNewServer}
	opts.OnConnect = w.onConnect
	rdb := redis.NewClient(opts)
	if cfg.Telemetry.Enabled() {
		// Commands outside a traced call (the epoch bumps, the cache updater) make no spans; the
		// statement is left out (it holds balances).
		err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(cfg.Telemetry.ChildSpans()), redisotel.WithDBStatement(false))
		if err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("tracing redis: %w", err)
		}
	}
	return rdb, nil
}

// serverWatch remembers the run_id of the Redis server the client reaches.
type serverWatch struct {
	mu      sync.Mutex
	runID   string
	changed func()
}

func (w *serverWatch) onConnect(ctx context.Context, cn *redis.Conn) error {
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("reading the redis server's run_id: %w", err)
	}
	runID := infoField(info, "run_id")
	if runID == "" {
		return errors.New("the redis server reports no run_id")
	}
	w.mu.Lock()
	changed := runID != w.runID
	w.runID = runID
	w.mu.Unlock()
	if changed {
		w.changed()
	}
	return nil
}

// infoField returns the value of field in the text of an INFO reply.
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
