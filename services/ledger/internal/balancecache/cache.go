// Package balancecache keeps a copy of each organization's balance in Redis for the per-call
// Authorize check. Entries are versioned (an older version never overwrites a newer one) and
// stamped with the cache epoch their state was read under; whether an entry may be trusted is
// decided by the ledger (internal/app), never here. Redis never holds the only copy: a miss is
// rebuilt from PostgreSQL.
package balancecache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// ErrUnavailable is returned without a call to Redis while recent calls have failed (the
// breaker is open), so an outage costs callers nothing but the fallback to PostgreSQL.
var ErrUnavailable = errors.New("the balance cache is unavailable")

// setIfNewer stores the entry when its version (ARGV[1]) is newer than the stored one, or equal
// with a newer epoch stamp (ARGV[8]); either way the key lives ARGV[7] ms more.
var setIfNewer = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'v', 'ep')
local v, ep = tonumber(cur[1]), tonumber(cur[2]) or 0
local nv, nep = tonumber(ARGV[1]), tonumber(ARGV[8])
if v and (v > nv or (v == nv and ep >= nep)) then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2], 'h', ARGV[3], 'c', ARGV[4], 'e', ARGV[5], 'id', ARGV[6], 'ep', ARGV[8], 'sl', ARGV[9], 'sm', ARGV[10], 'sa', ARGV[11], 'pl', ARGV[12])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1
`)

// Config configures a Cache.
type Config struct {
	// TTL is how long an entry lives after its last write (default 60s).
	TTL time.Duration
	// Timeout bounds every call to Redis (default 50ms).
	Timeout time.Duration
	// ReadTimeout bounds the reads of Authorize (default 10ms, at most Timeout): a read that
	// misses it falls back to PostgreSQL, so a stalled Redis costs a call at most this much.
	ReadTimeout time.Duration
	// OnNewServer is called, on a cluster, when a read is answered by a server no read was
	// answered by before (ClientConfig.OnNewServer); required for a *redis.ClusterClient.
	OnNewServer func()
	// Namespace, when set, prefixes the keys: each ledger shard (internal/shard) keeps its
	// entries apart, since each stamps them with its own PostgreSQL's cache epoch. "" is the
	// single-shard layout (Key).
	Namespace string
}

// Entry is one cached account with the cache epoch it was stamped with.
type Entry struct {
	Account ledger.Account
	Epoch   int64
}

// ProjectsKnown says whether the entry holds all the account's project limits (with their
// charges of the month), so that Authorize may check a project's limit from it. An entry of a
// state read without them, or written by a ledger that did not cache them, holds none.
func (e Entry) ProjectsKnown() bool { return e.Account.ProjectsComplete() }

// Cache is the Redis balance cache.
type Cache struct {
	rdb     redis.UniversalClient
	cfg     Config
	breaker breaker
	// servers is set on a cluster: the servers that answered reads (servers.go).
	servers *servers
	// reload, on a cluster, asks the client to read the cluster's topology again (in the
	// background, coalesced): go-redis does on a redirect but not when a master stops
	// answering, and would keep calling it until its periodic reload.
	reload func(context.Context)
}

// New returns a Cache over rdb; over a *redis.ClusterClient it needs cfg.OnNewServer.
func New(rdb redis.UniversalClient, cfg Config) (*Cache, error) {
	c := &Cache{rdb: rdb}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		if cfg.OnNewServer == nil {
			return nil, errors.New("balancecache: OnNewServer is required on a cluster")
		}
		c.servers = &servers{changed: cfg.OnNewServer, seen: map[string]struct{}{}}
		c.reload = cc.ReloadState
	}
	if cfg.TTL <= 0 {
		cfg.TTL = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Millisecond
	}
	cfg.ReadTimeout = min(cfg.ReadTimeout, cfg.Timeout)
	c.cfg = cfg
	return c, nil
}

// Key is the Redis key of org; the {org} hash tag keeps an org's keys on one cluster slot.
func Key(orgID string) string { return "tally:ledger:{" + orgID + "}:balance" }

// ShardKey is the Redis key of org in the namespace of a ledger shard.
func ShardKey(namespace, orgID string) string {
	if namespace == "" {
		return Key(orgID)
	}
	return "tally:ledger:" + namespace + ":{" + orgID + "}:balance"
}

func (c *Cache) key(orgID string) string { return ShardKey(c.cfg.Namespace, orgID) }

// Get returns the cached entry of org; ok is false on a miss.
func (c *Cache) Get(ctx context.Context, orgID string) (e Entry, ok bool, err error) {
	entries, found, err := c.GetMany(ctx, []string{orgID})
	if err != nil {
		return Entry{}, false, err
	}
	return entries[0], found[0], nil
}

// fields are an entry's: version, balance, held, currency, expiry, account id, epoch stamp, and
// the spend limit, the month of the spending (unix seconds) and the spending (Authorize checks
// the limit from the entry too), and the project limits (projectsField). An entry written
// before the spend fields existed lacks them: a miss, not an entry without a limit.
// readCheckedScript (servers.go) reads the same list.
var fields = []string{"v", "b", "h", "c", "e", "id", "ep", "sl", "sm", "sa", "pl"}

// GetMany reads the cached entries of orgIDs in one pipeline (one round trip), within the
// cache's read timeout.
func (c *Cache) GetMany(ctx context.Context, orgIDs []string) ([]Entry, []bool, error) {
	if !c.breaker.allow() {
		return nil, nil, ErrUnavailable
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadTimeout)
	defer cancel()
	var vals [][]any
	var err error
	if c.servers != nil {
		vals, err = c.readChecked(ctx, orgIDs)
	} else {
		vals, err = c.read(ctx, orgIDs)
	}
	c.record(parent, err)
	if err != nil {
		return nil, nil, fmt.Errorf("reading cached balances: %w", err)
	}
	entries := make([]Entry, len(orgIDs))
	found := make([]bool, len(orgIDs))
	for i := range vals {
		entries[i], found[i] = decode(orgIDs[i], vals[i])
	}
	return entries, found, nil
}

// read is GetMany's pipeline on one server: an HMGET per organization.
func (c *Cache) read(ctx context.Context, orgIDs []string) ([][]any, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(orgIDs))
	for i, org := range orgIDs {
		cmds[i] = pipe.HMGet(ctx, c.key(org), fields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	vals := make([][]any, len(cmds))
	for i, cmd := range cmds {
		vals[i] = cmd.Val()
	}
	return vals, nil
}

// decode reads an entry; an incomplete or corrupt one counts as a miss.
func decode(orgID string, vals []any) (Entry, bool) {
	if len(vals) != len(fields) || vals[0] == nil {
		return Entry{}, false
	}
	var nums [8]int64 // v, b, h, e, id, sl, sm, sa
	for i, idx := range []int{0, 1, 2, 4, 5, 7, 8, 9} {
		s, _ := vals[idx].(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Entry{}, false
		}
		nums[i] = n
	}
	cur, _ := vals[3].(string)
	epStr, _ := vals[6].(string)
	epoch, _ := strconv.ParseInt(epStr, 10, 64) // an entry without a stamp is epoch 0: never current
	a := ledger.Account{ID: nums[4], OrgID: orgID, Version: nums[0], Balance: money.Nanos(nums[1]), Held: money.Nanos(nums[2]), Currency: cur}
	if nums[3] != 0 {
		a.ExpiresAt = time.UnixMicro(nums[3]).UTC()
	}
	a.Limit.Amount, a.Spend.Amount = money.Nanos(nums[5]), money.Nanos(nums[7])
	if nums[6] != 0 {
		a.Spend.Month = time.Unix(nums[6], 0).UTC()
	}
	pl, _ := vals[10].(string)
	a.Projects, a.ProjectLimitCount = decodeProjects(pl, a.Version)
	return Entry{Account: a, Epoch: epoch}, true
}

// Set stores the entries newer than the cached ones (by version, then by epoch) in one
// pipeline, within the cache's timeout. An error means any of them may or may not be stored.
func (c *Cache) Set(ctx context.Context, entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if !c.breaker.allow() {
		return ErrUnavailable
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	err := c.set(ctx, entries, false)
	if err != nil && isNoScript(err) {
		// A server new to the script (restarted, a promoted replica): sent in full once, which
		// loads it there (SCRIPT LOAD would have to reach every node of a cluster).
		err = c.set(ctx, entries, true)
	}
	c.record(parent, err)
	if err != nil {
		return fmt.Errorf("writing cached balances: %w", err)
	}
	return nil
}

func (c *Cache) set(ctx context.Context, entries []Entry, full bool) error {
	run := setIfNewer.EvalSha
	if full {
		run = setIfNewer.Eval
	}
	pipe := c.rdb.Pipeline()
	for _, e := range entries {
		a := e.Account
		var exp int64
		if !a.ExpiresAt.IsZero() {
			exp = a.ExpiresAt.UnixMicro()
		}
		var month int64
		if !a.Spend.Month.IsZero() {
			month = a.Spend.Month.Unix()
		}
		run(ctx, pipe, []string{c.key(a.OrgID)}, a.Version, int64(a.Balance), int64(a.Held), a.Currency, exp, a.ID, c.cfg.TTL.Milliseconds(), e.Epoch,
			int64(a.Limit.Amount), month, int64(a.Spend.Amount), encodeProjects(a))
	}
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// record feeds the breaker with the outcome of a call, unless the caller itself gave up.
func (c *Cache) record(parent context.Context, err error) {
	// A call its caller gave up on says nothing about Redis, but it may have been the probe.
	c.breaker.record(err, parent.Err() == nil)
	if err != nil && c.reload != nil {
		c.reload(parent)
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// breaker fails calls fast while Redis is failing: after a failure it opens for a backoff
// (doubling from minOpen to maxOpen), then lets ONE call through to probe Redis (half open)
// while the others keep failing fast; the probe's success closes it, its failure opens it again.
// Only the probe, not every call in flight, pays a stalled Redis's timeout.
type breaker struct {
	openUntil atomic.Int64 // unix nanos; 0 when closed
	probing   atomic.Bool  // a half-open probe is in flight
	mu        sync.Mutex
	backoff   time.Duration
}

const (
	minOpen = 25 * time.Millisecond
	// maxOpen bounds how late the cache is used again after Redis comes back.
	maxOpen = 500 * time.Millisecond
)

func (b *breaker) allow() bool {
	until := b.openUntil.Load()
	if until == 0 {
		return true
	}
	if time.Now().UnixNano() < until {
		return false
	}
	return b.probing.CompareAndSwap(false, true)
}

// record ends a call: counts says whether its outcome tells anything about Redis.
func (b *breaker) record(err error, counts bool) {
	defer b.probing.Store(false)
	if !counts {
		return
	}
	if err == nil {
		if b.openUntil.Load() != 0 {
			b.mu.Lock()
			b.openUntil.Store(0)
			b.backoff = 0
			b.mu.Unlock()
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backoff = min(max(2*b.backoff, minOpen), maxOpen)
	b.openUntil.Store(time.Now().Add(b.backoff).UnixNano())
}
