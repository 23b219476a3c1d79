package balancecache

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// readChecked reads an entry (the HMGET of GetMany) and names the server that answered: its
// run_id (a new one after a restart, perhaps from an older snapshot) and its replication id
// (a new one whenever a replica is promoted, since it may lag behind the master it replaces).
// In one script, so the entry comes from the server named.
var readChecked = redis.NewScript(`
local info = redis.call('INFO', 'server', 'replication')
local vals = redis.call('HMGET', KEYS[1], 'v', 'b', 'h', 'c', 'e', 'id', 'ep')
vals[8] = (string.match(info, 'run_id:(%w+)') or '') .. '/' .. (string.match(info, 'master_replid:(%w+)') or '')
return vals
`)

// servers remembers the servers that answered the reads of a cluster's cache. On one server
// the client's connections tell a new server (ClientConfig.OnNewServer); on a cluster they
// reach several servers, and a connection opened to a replica for the cluster's topology may
// later be used once it is promoted, so each read names its server instead.
type servers struct {
	changed func()
	mu      sync.Mutex
	seen    map[string]struct{}
}

// answered records that server answered a read. A server not seen before is reported, BEFORE it
// is remembered: no read from it is taken for one from a known server until the ledger has
// asked to retire the entries it may hold.
func (s *servers) answered(server string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[server]; ok {
		return
	}
	s.changed()
	s.seen[server] = struct{}{}
}

// getManyChecked is GetMany on a cluster: each entry is read with the name of its server.
func (c *Cache) getManyChecked(ctx context.Context, orgIDs []string) ([]Entry, []bool, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadTimeout)
	defer cancel()
	cmds, err := c.readChecked(ctx, orgIDs, false)
	if err != nil && isNoScript(err) {
		// A server new to the script (a promoted replica, a restarted one): sent in full once.
		cmds, err = c.readChecked(ctx, orgIDs, true)
	}
	c.record(parent, err)
	if err != nil {
		return nil, nil, fmt.Errorf("reading cached balances: %w", err)
	}
	entries := make([]Entry, len(orgIDs))
	found := make([]bool, len(orgIDs))
	for i, cmd := range cmds {
		vals, err := cmd.Slice()
		if err != nil || len(vals) != len(fields)+1 {
			return nil, nil, fmt.Errorf("reading cached balances: unexpected reply %v: %w", vals, err)
		}
		server, _ := vals[len(fields)].(string)
		if server == "/" {
			return nil, nil, errors.New("reading cached balances: the server gave no run_id")
		}
		c.servers.answered(server)
		entries[i], found[i] = decode(orgIDs[i], vals[:len(fields)])
	}
	return entries, found, nil
}

func (c *Cache) readChecked(ctx context.Context, orgIDs []string, full bool) ([]*redis.Cmd, error) {
	run := readChecked.EvalSha
	if full {
		run = readChecked.Eval
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(orgIDs))
	for i, org := range orgIDs {
		cmds[i] = run(ctx, pipe, []string{Key(org)})
	}
	_, err := pipe.Exec(ctx)
	return cmds, err
}
