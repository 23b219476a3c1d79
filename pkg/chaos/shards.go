package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/localstack"
)

// Shard names of the hosts topology's ledger: main is the primary with its synchronous standby
// (the one postgres-promotion promotes); b is a second private cluster, without a standby.
const (
	shardMain = "main"
	shardB    = "b"
)

// shardMapRefresh is how often the hosts' ledger replicas reread the shard map: long, so that a
// replica other than the one that moved an organization keeps a stale map and learns the move
// from the residency fence, as a replica of a real deployment between two refreshes does.
const shardMapRefresh = time.Minute

// ledgerShard is one PostgreSQL cluster of the ledger, as the suite reads it.
type ledgerShard struct {
	name string
	db   *pgxpool.Pool
}

// startShardB starts the ledger's second PostgreSQL cluster (fsync on, no standby) and the
// suite's pool on it.
func (s *Stack) startShardB(ctx context.Context) error {
	s.progress("starting PostgreSQL for the ledger's shard %s (fsync on, no standby)", shardB)
	var err error
	if s.PGShardB, err = localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(s.cfg.Dir, "pg-"+shardB), Durable: true,
		Logger: s.logger}); err != nil {
		return err
	}
	if s.ShardB, err = pgxpool.New(ctx, s.PGShardB.URL()); err != nil {
		return fmt.Errorf("connecting to shard %s: %w", shardB, err)
	}
	return nil
}

// exposeShardB puts shard b behind a proxy on the bridge and names both shards for the ledger.
func (s *Stack) exposeShardB(expose func(string) (*TCPProxy, error)) error {
	p, err := expose("127.0.0.1:" + strconv.Itoa(s.PGShardB.Port()))
	if err != nil {
		return err
	}
	s.stores.ledgerShards = shardMain + "=" + s.stores.pgLedger + " " + shardB + "=" + multiHostURL(p.Addr())
	s.ledgerSharded, s.shardedAt = true, time.Now()
	return nil
}

// ledgerShards returns the shards the ledger runs on: main (the suite's DB) and, in the hosts
// topology, b.
func (s *Stack) ledgerShards() []ledgerShard {
	out := []ledgerShard{{name: shardMain, db: s.DB}}
	if s.ledgerSharded {
		out = append(out, ledgerShard{name: shardB, db: s.ShardB})
	}
	return out
}

// residentShard returns the shard org's account lives on (neither moved away nor frozen), with
// its balance and held amount; an organization resident on no shard, or on two, is an error.
func (s *Stack) residentShard(ctx context.Context, org string) (ledgerShard, int64, int64, error) {
	var found []ledgerShard
	var balance, held int64
	for _, sh := range s.ledgerShards() {
		cctx, cancel := context.WithTimeout(ctx, queryTimeout)
		var b, h int64
		err := sh.db.QueryRow(cctx, `SELECT balance::bigint, held::bigint FROM ledger.accounts
			WHERE kind = 'org' AND org_id = $1 AND moved_to IS NULL AND NOT frozen`, org).Scan(&b, &h)
		cancel()
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue
		case err != nil:
			return ledgerShard{}, 0, 0, fmt.Errorf("reading %s on shard %s: %w", org, sh.name, err)
		}
		found, balance, held = append(found, sh), b, h
	}
	if len(found) != 1 {
		return ledgerShard{}, 0, 0, fmt.Errorf("%s lives on %d ledger shards, not one", org, len(found))
	}
	return found[0], balance, held, nil
}

// countShards sums a count over every ledger shard.
func (r *run) countShards(ctx context.Context, query string, args ...any) (int, error) {
	n, err := r.sumShards(ctx, query, args...)
	return int(n), err
}

// sumShards sums an integer query over every ledger shard.
func (r *run) sumShards(ctx context.Context, query string, args ...any) (int64, error) {
	var total int64
	for _, sh := range r.stack.ledgerShards() {
		n, err := shardInt(ctx, sh, query, args...)
		if err != nil {
			return 0, err
		}
		total += int64(n)
	}
	return total, nil
}

// shardInt runs a query returning one integer on sh.
func shardInt(ctx context.Context, sh ledgerShard, query string, args ...any) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var n int64
	if err := sh.db.QueryRow(cctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("shard %s: %w", sh.name, err)
	}
	return int(n), nil
}
