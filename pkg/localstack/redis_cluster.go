package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// RedisClusterConfig configures StartRedisCluster.
type RedisClusterConfig struct {
	// Dir holds one directory per node (its redis.log and nodes.conf); required.
	Dir string
	// Masters is the number of masters (default 3), each with Replicas replicas (default 1).
	Masters, Replicas int
	// NodeTimeout is the cluster-node-timeout in milliseconds (default 1000): how long a master
	// may not answer before its replica takes over.
	NodeTimeout int
	// Bind is the address every node listens on and announces; empty is 127.0.0.1.
	Bind string
	// Bin is the redis-server executable and CLI redis-cli; empty looks them up on PATH.
	Bin, CLI string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// RedisCluster is a private Redis Cluster on 127.0.0.1 started by StartRedisCluster: every
// node its own redis-server process.
type RedisCluster struct {
	nodes []*Redis
	cli   string
}

// startClusterNode starts one node on free ports (its client port and its bus port). Ports are
// picked before redis-server binds them, so another process can take one in between ("bind:
// address already in use"): the node then starts again on new ones, in a clean directory (a
// nodes.conf written before the bus port failed must not name it).
func startClusterNode(ctx context.Context, cfg RedisClusterConfig, dir string) (*Redis, error) {
	var err error
	for range freePortAttempts {
		// The bus port is chosen too: port+10000, the default, may be taken or out of range.
		var bus int
		if bus, err = FreePort(); err != nil {
			return nil, err
		}
		var r *Redis
		r, err = StartRedis(ctx, RedisConfig{
			Dir: dir, Bind: cfg.Bind, Bin: cfg.Bin, Logger: cfg.Logger,
			Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", strconv.Itoa(cfg.NodeTimeout), "--cluster-port", strconv.Itoa(bus),
				// A replica that never synced cannot take over: sync at once.
				"--repl-diskless-sync-delay", "0"},
		})
		if err == nil || ctx.Err() != nil {
			return r, err
		}
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			return nil, errors.Join(err, rmErr)
		}
	}
	return nil, err
}

// StartRedisCluster starts Masters×(1+Replicas) redis-servers in cluster mode on free ports,
// joins them with `redis-cli --cluster create` and waits until every slot is served.
func StartRedisCluster(ctx context.Context, cfg RedisClusterConfig) (*RedisCluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("starting redis cluster: Dir is required")
	}
	cfg.Masters, cfg.Replicas, cfg.NodeTimeout = orDefault(cfg.Masters, 3), orDefault(cfg.Replicas, 1), orDefault(cfg.NodeTimeout, 1000)
	cli := cfg.CLI
	if cli == "" {
		var err error
		if cli, err = exec.LookPath("redis-cli"); err != nil {
			return nil, fmt.Errorf("starting redis cluster: %w", err)
		}
	}
	c := &RedisCluster{cli: cli}
	for i := range cfg.Masters * (1 + cfg.Replicas) {
		r, err := startClusterNode(ctx, cfg, filepath.Join(cfg.Dir, "node"+strconv.Itoa(i)))
		if err != nil {
			_ = c.Stop(context.Background())
			return nil, fmt.Errorf("starting redis cluster: %w", err)
		}
		c.nodes = append(c.nodes, r)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(cfg.Replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		_ = c.Stop(context.Background())
		return nil, fmt.Errorf("starting redis cluster: redis-cli --cluster create: %w: %s", err, out)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		_ = c.Stop(context.Background())
		return nil, fmt.Errorf("starting redis cluster: %w", err)
	}
	return c, nil
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// Nodes returns the cluster's servers, in the order of Addrs; which are masters changes with
// failovers (ask the cluster: CLUSTER SHARDS, or a client's MasterForKey).
func (c *RedisCluster) Nodes() []*Redis { return c.nodes }

// Node returns the server at addr, or nil.
func (c *RedisCluster) Node(addr string) *Redis {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Addrs returns the host:port of every node.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// URL returns the cluster's redis+cluster:// URL (every node as a seed), as the ledger's
// REDIS_URL reads it.
func (c *RedisCluster) URL() string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",")
}

// WaitHealthy waits until every running node sees all 16384 slots served by running masters
// (after a master is killed: once its replica has taken over), and every replica is in sync.
func (c *RedisCluster) WaitHealthy(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	err := poll(ctx, nil, func(ctx context.Context) error {
		running := map[string]bool{}
		for _, n := range c.nodes {
			running[n.Addr()] = n.Pid() != 0
		}
		for _, n := range c.nodes {
			if running[n.Addr()] {
				if err := c.servedByRunning(ctx, n, running); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the redis cluster: %w", err)
	}
	return nil
}

// servedByRunning checks that n sees the cluster ok, every slot assigned, and every master
// serving slots running and not failed.
func (c *RedisCluster) servedByRunning(ctx context.Context, n *Redis, running map[string]bool) error {
	cli := func(args ...string) (string, error) { return c.Command(ctx, n, args...) }
	info, err := cli("CLUSTER", "INFO")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
		return fmt.Errorf("%s: cluster not ok yet:\n%s", n.Addr(), info)
	}
	repl, err := cli("INFO", "replication")
	if err != nil {
		return err
	}
	if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
		return fmt.Errorf("%s: replica not in sync yet", n.Addr())
	}
	nodes, err := cli("CLUSTER", "NODES")
	if err != nil {
		return err
	}
	// <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges...>
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue // serves no slot
		}
		addr, _, _ := strings.Cut(f[1], "@")
		if !running[addr] || strings.Contains(f[2], "fail") || !strings.Contains(f[2], "master") {
			return fmt.Errorf("%s: slots %v still on %s (%s)", n.Addr(), f[8:], addr, f[2])
		}
	}
	return nil
}

// Command runs one command on node n with redis-cli and returns its output.
func (c *RedisCluster) Command(ctx context.Context, n *Redis, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, c.cli, append([]string{"-h", n.host, "-p", strconv.Itoa(n.Port())}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("redis-cli %v on %s: %w", args, n.Addr(), err)
	}
	return string(out), nil
}

// Masters returns the running nodes that are masters now, with the number of keys each holds.
func (c *RedisCluster) Masters(ctx context.Context) (map[*Redis]int, error) {
	out := map[*Redis]int{}
	for _, n := range c.nodes {
		if n.Pid() == 0 {
			continue
		}
		role, err := c.Command(ctx, n, "ROLE")
		if err != nil {
			return nil, err
		}
		if first, _, _ := strings.Cut(role, "\n"); strings.TrimSpace(first) != "master" {
			continue
		}
		size, err := c.Command(ctx, n, "DBSIZE")
		if err != nil {
			return nil, err
		}
		keys, err := strconv.Atoi(strings.TrimSpace(size))
		if err != nil {
			return nil, fmt.Errorf("DBSIZE on %s: %q", n.Addr(), size)
		}
		out[n] = keys
	}
	return out, nil
}

// Stop stops every node.
func (c *RedisCluster) Stop(ctx context.Context) error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.Stop(ctx))
	}
	return errors.Join(errs...)
}
