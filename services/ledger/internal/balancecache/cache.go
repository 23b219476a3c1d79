// Package balancecache keeps a copy of each organization's balance in Redis for the per-call
// Authorize check. Entries are versioned: an older version never overwrites a newer one. Redis
// never holds the only copy: a miss is rebuilt from PostgreSQL.
package balancecache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// setIfNewer stores the fields when ARGV[1] (the version) is newer than the stored one.
var setIfNewer = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if v and tonumber(v) >= tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2], 'h', ARGV[3], 'c', ARGV[4], 'e', ARGV[5], 'id', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1
`)

// Cache is the Redis balance cache.
type Cache struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// New returns a Cache; entries live ttl after their last write (default 24h).
func New(rdb redis.UniversalClient, ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &Cache{rdb: rdb, ttl: ttl}
}

// Key is the Redis key of org; the {org} hash tag keeps an org's keys on one cluster slot.
func Key(orgID string) string { return "tally:ledger:{" + orgID + "}:balance" }

// Get returns the cached account of org; ok is false on a miss.
func (c *Cache) Get(ctx context.Context, orgID string) (acct ledger.Account, ok bool, err error) {
	accts, found, err := c.GetMany(ctx, []string{orgID})
	if err != nil {
		return ledger.Account{}, false, err
	}
	return accts[0], found[0], nil
}

var fields = []string{"v", "b", "h", "c", "e", "id"}

// GetMany reads the cached accounts of orgIDs in one pipeline (one round trip).
func (c *Cache) GetMany(ctx context.Context, orgIDs []string) ([]ledger.Account, []bool, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(orgIDs))
	for i, org := range orgIDs {
		cmds[i] = pipe.HMGet(ctx, Key(org), fields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("reading cached balances: %w", err)
	}
	accts := make([]ledger.Account, len(orgIDs))
	found := make([]bool, len(orgIDs))
	for i, cmd := range cmds {
		a, ok, err := decode(orgIDs[i], cmd.Val())
		if err != nil {
			return nil, nil, err
		}
		accts[i], found[i] = a, ok
	}
	return accts, found, nil
}

func decode(orgID string, vals []any) (ledger.Account, bool, error) {
	if len(vals) != len(fields) || vals[0] == nil {
		return ledger.Account{}, false, nil
	}
	var nums [4]int64 // v, b, h, e
	for i, idx := range []int{0, 1, 2, 4} {
		s, _ := vals[idx].(string)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return ledger.Account{}, false, errors.New("corrupt cached balance")
		}
		nums[i] = n
	}
	cur, _ := vals[3].(string)
	idStr, _ := vals[5].(string)
	id, _ := strconv.ParseInt(idStr, 10, 64)
	a := ledger.Account{ID: id, OrgID: orgID, Version: nums[0], Balance: money.Nanos(nums[1]), Held: money.Nanos(nums[2]), Currency: cur}
	if nums[3] != 0 {
		a.ExpiresAt = time.UnixMicro(nums[3]).UTC()
	}
	return a, true, nil
}

// Set stores accounts whose version is newer than the cached one, in one pipeline.
func (c *Cache) Set(ctx context.Context, accts ...ledger.Account) error {
	if len(accts) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for _, a := range accts {
		var exp int64
		if !a.ExpiresAt.IsZero() {
			exp = a.ExpiresAt.UnixMicro()
		}
		setIfNewer.Run(ctx, pipe, []string{Key(a.OrgID)}, a.Version, int64(a.Balance), int64(a.Held), a.Currency, exp, a.ID, c.ttl.Milliseconds())
	}
	_, err := pipe.Exec(ctx)
	if err != nil && errors.Is(err, redis.Nil) {
		err = nil
	}
	if err != nil && isNoScript(err) {
		if lerr := setIfNewer.Load(ctx, c.rdb).Err(); lerr != nil {
			return fmt.Errorf("loading cache script: %w", lerr)
		}
		return c.Set(ctx, accts...)
	}
	if err != nil {
		return fmt.Errorf("writing cached balances: %w", err)
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
