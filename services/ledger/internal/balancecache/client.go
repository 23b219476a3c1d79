package balancecache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/tallyhq/tally/pkg/telemetry"
)

// ClientConfig configures NewClient.
type ClientConfig struct {
	// URL is one server (redis://host:port/db, rediss:// for TLS) or a Redis Cluster given by
	// some of its nodes (redis+cluster://[user:password@]host:port,host:port[?options], or
	// rediss+cluster:// for TLS; the options are go-redis's cluster URL options).
	URL string
	// Timeout bounds dialing and every command (default 50ms).
	Timeout time.Duration
	// OnNewServer is called on a new connection, before it is used, when it reaches another
	// Redis server than the connections before it (by run_id: a restart, maybe from an older
	// snapshot, or a failover to a replica), and on the very first connection. Whatever the
	// cache held before may be older than PostgreSQL from then on. On a cluster, where the
	// connections reach several servers, the cache's reads tell instead (Config.OnNewServer).
	OnNewServer func()
	// Telemetry makes a span of every command of a traced call (nil: none).
	Telemetry *telemetry.Telemetry
}

// clusterSchemes are the URL schemes of a Redis Cluster and the scheme of its nodes.
var clusterSchemes = map[string]string{"redis+cluster": "redis", "rediss+cluster": "rediss"}

// IsClusterURL says whether url names a Redis Cluster (redis+cluster://, rediss+cluster://).
func IsClusterURL(url string) bool {
	scheme, _, _ := strings.Cut(url, "://")
	_, ok := clusterSchemes[scheme]
	return ok
}

// NewClient returns a Redis client for the cache that fails fast (no retries, every call and
// dial bounded by the timeout): a *redis.Client that reports server changes to OnNewServer, or
// a *redis.ClusterClient for a cluster URL.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	if cfg.OnNewServer == nil {
		return nil, errors.New("balancecache: OnNewServer is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	var rdb redis.UniversalClient
	if IsClusterURL(cfg.URL) {
		opts, err := parseClusterURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("parsing REDIS_URL: %w", err)
		}
		failFast(cfg.Timeout, &opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.ContextTimeoutEnabled, &opts.MaxRetries, &opts.DialerRetries, &opts.PoolSize)
		// Reads go to masters only: a replica may lag behind its master (and, sharing its
		// replication id, would not be told apart by the cache's reads).
		opts.ReadOnly, opts.RouteByLatency, opts.RouteRandomly = false, false, false
		rdb = redis.NewClusterClient(opts)
	} else {
		opts, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("parsing REDIS_URL: %w", err)
		}
		failFast(cfg.Timeout, &opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.ContextTimeoutEnabled, &opts.MaxRetries, &opts.DialerRetries, &opts.PoolSize)
		w := &serverWatch{changed: cfg.OnNewServer}
		opts.OnConnect = w.onConnect
		rdb = redis.NewClient(opts)
	}
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

// failFast sets the options shared by redis.Options and redis.ClusterOptions that make every
// call fail fast: each dial, read, write and pool wait bounded by timeout (and the context's
// deadline), no retries, one dial attempt, 64 connections (per node on a cluster).
func failFast(timeout time.Duration, dial, read, write, pool *time.Duration, ctxTimeout *bool, retries, dialerRetries, poolSize *int) {
	*dial, *read, *write, *pool = timeout, timeout, timeout, timeout
	*ctxTimeout = true
	*retries, *dialerRetries, *poolSize = -1, 1, 64
}

// parseClusterURL reads redis+cluster://[userinfo@]host:port,host:port[/][?query] as go-redis's
// cluster URL (redis://[userinfo@]host:port?addr=host:port&query).
func parseClusterURL(raw string) (*redis.ClusterOptions, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	rest, query, _ := strings.Cut(rest, "?")
	rest = strings.TrimSuffix(rest, "/")
	if strings.Contains(rest, "/") {
		return nil, errors.New("a cluster has no database number")
	}
	userinfo, hosts := "", rest
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		userinfo, hosts = rest[:i+1], rest[i+1:]
	}
	addrs := strings.Split(hosts, ",")
	if slices.Contains(addrs, "") {
		return nil, errors.New("a cluster URL needs host:port[,host:port...]")
	}
	q := make([]string, 0, len(addrs))
	for _, a := range addrs[1:] {
		q = append(q, "addr="+url.QueryEscape(a))
	}
	if query != "" {
		q = append(q, query)
	}
	opts, err := redis.ParseClusterURL(clusterSchemes[scheme] + "://" + userinfo + addrs[0] + "?" + strings.Join(q, "&"))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster URL: %w", err)
	}
	return opts, nil
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
