package balancecache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// readCheckedScript reads an entry (the HMGET of GetMany) and names the server that answered: its
// run_id (a new one after a restart, perhaps from an older snapshot) and its replication id
// (a new one whenever a replica is promoted, since it may lag behind the master it replaces).
// In one script, so the entry comes from the server named.
var readCheckedScript = redis.NewScript(`
local info = redis.call('INFO', 'server', 'replication')
local vals = redis.call('HMGET', KEYS[1], 'v', 'b', 'h', 'c', 'e', 'id', 'ep', 'sl', 'sm', 'sa', 'pl')
vals[12] = (string.match(info, 'run_id:(%w+)') or '') .. '/' .. (string.match(info, 'master_replid:(%w+)') or '')
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

// readChecked is GetMany's pipeline on a cluster: each entry is read with the name of its
// server, and a new server is reported before the entries are returned.
func (c *Cache) readChecked(ctx context.Context, orgIDs []string) ([][]any, error) {
	cmds, err := c.runReadChecked(ctx, orgIDs, false)
	if err != nil && isNoScript(err) {
		// A server new to the script (a promoted replica, a restarted one): sent in full once.
		cmds, err = c.runReadChecked(ctx, orgIDs, true)
	}
	if err != nil {
		return nil, err
	}
	vals := make([][]any, len(cmds))
	for i, cmd := range cmds {
		v, err := cmd.Slice()
		if err != nil || len(v) != len(fields)+1 {
			return nil, fmt.Errorf("unexpected reply %v: %w", v, err)
		}
		server, _ := v[len(fields)].(string)
		if strings.HasPrefix(server, "/") { // a run_id is what tells a restart from its own snapshot
			return nil, errors.New("the server gave no run_id")
		}
		c.servers.answered(server)
		vals[i] = v[:len(fields)]
	}
	return vals, nil
}

func (c *Cache) runReadChecked(ctx context.Context, orgIDs []string, full bool) ([]*redis.Cmd, error) {
	run := readCheckedScript.EvalSha
	if full {
		run = readCheckedScript.Eval
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(orgIDs))
	for i, org := range orgIDs {
		cmds[i] = run(ctx, pipe, []string{c.key(org)})
	}
	_, err := pipe.Exec(ctx)
	return cmds, err
}
