package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/rpcclient"
)

// storeAddrs is where the services reach the stores: loopback, or (hosts) the bridge address,
// through a proxy in the root namespace.
type storeAddrs struct {
	pg, pgLedger, redis, smtp, stripe string
	// ledgerShards is the ledger's TALLY_LEDGER_SHARDS once it is sharded (hosts: main and b).
	ledgerShards string
}

// hostPorts are the listen ports of every replica (each host has its own address, so every host
// uses the same ones).
var hostPorts = map[string]int{
	"pricing": 7101, "ledger": 7102, "payments": 7103, "notifications": 7104, "instances": 7105,
	"gateway": 7180, "payments-http": 7181, "ledger-metrics": 7190,
}

// storeKeepAlive is how the proxies in front of the stores probe the hosts' connections: as a
// PostgreSQL with tcp_keepalives_idle=1, _interval=1, _count=3 does, a partitioned host's
// sessions (and the advisory locks they hold) end within about 4 seconds.
var storeKeepAlive = net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}

// listenName is the key of a service's gRPC address in the address maps.
func listenName(service string) string {
	if service == "instances-metering" {
		return "instances"
	}
	return service
}

// replicaKey names host h's replica of a service in Stack.services ("ledger@tally-h1").
func replicaKey(service string, h Host) string { return service + "@" + h.Name }

// serviceOf returns the service of a key of Stack.services.
func serviceOf(key string) string {
	name, _, _ := strings.Cut(key, "@")
	return name
}

// startHosts creates the topology, puts the stores behind proxies on the bridge and starts a
// replica of every service on every host.
func (s *Stack) startHosts(ctx context.Context) error {
	s.progress("creating %d hosts (network namespaces %s1..%d on bridge %s, %s0/24)", s.cfg.Hosts, hostPrefix, s.cfg.Hosts, bridgeName, subnet)
	topo, err := StartTopology(ctx, s.cfg.Hosts)
	if err != nil {
		return err
	}
	s.topo = topo
	expose := func(target string) (*TCPProxy, error) {
		p, err := StartTCPProxyOn(bridgeIP+":0", target, net.ListenConfig{KeepAliveConfig: storeKeepAlive})
		if err != nil {
			return nil, err
		}
		s.proxies = append(s.proxies, p)
		return p, nil
	}
	// The hosts reach PostgreSQL directly through their proxies (one to the primary's port, one
	// to the standby's), which know which host each session comes from (LeaseHolder), with a
	// multi-host URL: whichever is the primary takes the writes, before and after a promotion.
	for _, pg := range []*localstack.Postgres{s.PG, s.PGStandby} {
		p, err := expose("127.0.0.1:" + strconv.Itoa(pg.Port()))
		if err != nil {
			return err
		}
		s.pgProxies = append(s.pgProxies, p)
	}
	// The Redis Cluster listens on the bridge address itself: its nodes announce their addresses
	// to the clients (redirections, topology), which must reach them as announced.
	s.progress("starting a Redis Cluster (3 masters, 3 replicas) on %s", bridgeIP)
	if s.RedisCluster, err = localstack.StartRedisCluster(ctx, localstack.RedisClusterConfig{Dir: filepath.Join(s.cfg.Dir, "redis-cluster"),
		Bind: bridgeIP, Logger: s.logger}); err != nil {
		return err
	}
	smtp, err := expose(s.Mail.SMTPAddr())
	if err != nil {
		return err
	}
	stripe, err := expose(strings.TrimPrefix(s.Stripe.URL(), "http://"))
	if err != nil {
		return err
	}
	pgURL := multiHostURL(s.pgProxies[0].Addr(), s.pgProxies[1].Addr())
	s.stores = storeAddrs{pg: pgURL, pgLedger: pgURL, redis: s.RedisCluster.URL(), smtp: smtp.Addr(), stripe: "http://" + stripe.Addr()}
	if err := s.exposeShardB(expose); err != nil {
		return err
	}
	for _, h := range topo.Hosts {
		addrs := map[string]string{}
		for name, port := range hostPorts {
			addrs[name] = net.JoinHostPort(h.IP, strconv.Itoa(port))
		}
		s.hostAddrs = append(s.hostAddrs, addrs)
	}
	for _, name := range hostServiceNames {
		for i, h := range topo.Hosts {
			s.progress("starting %s on %s (%s)", name, s.hostAddrs[i][listenName(name)], h.Name)
			if err := s.startReplica(ctx, name, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// startReplica starts host i's replica of a service, unsupervised: a host that is killed stays
// down until the suite brings it back (StartHost).
func (s *Stack) startReplica(ctx context.Context, name string, i int) error {
	h := s.topo.Hosts[i]
	key := replicaKey(name, h)
	path, args := h.Command(filepath.Join(s.binDir, name))
	env := s.env(name, s.hostAddrs[i])
	// Services call each other as the suite's clients do: round-robin over every host's replica.
	for k, service := range map[string]string{"TALLY_LEDGER_ADDR": "ledger", "TALLY_PRICING_ADDR": "pricing",
		"TALLY_PAYMENTS_ADDR": "payments", "TALLY_NOTIFICATIONS_ADDR": "notifications", "TALLY_INSTANCES_ADDR": "instances"} {
		env[k] = rpcclient.StaticScheme + ":///" + strings.Join(s.ReplicaAddrs(service), ",")
	}
	// notifications hands over leases and claims at the pace of a few seconds.
	switch name {
	case "notifications":
		env["TALLY_NOTIFICATIONS_LEASE_INTERVAL"] = "500ms"
	case "instances-metering":
		env["TALLY_INSTANCE_REPLICA"] = h.Name
	case "payments":
		// One pass a second (reconcileInterval) across the replicas: each claims the current
		// second's pass, the first claim runs it; the checks count the passes.
		env["TALLY_RECONCILE_INTERVAL"] = reconcileInterval.String()
		env["TALLY_PAYMENTS_REPLICA"] = h.Name
	}
	logFile := filepath.Join(s.cfg.Dir, "logs", key+".log")
	p, err := localstack.StartProcess(ctx, localstack.ProcessConfig{
		Name: key, Path: path, Args: args, Env: envList(env),
		ReadyAddr: s.hostAddrs[i][listenName(name)], LogFile: logFile, Logger: s.logger,
	})
	if err != nil {
		return fmt.Errorf("starting %s (log: %s): %w", key, logFile, err)
	}
	s.mu.Lock()
	s.services[key] = p
	s.mu.Unlock()
	return nil
}

// Hosts returns the hosts of the topology (none without one).
func (s *Stack) Hosts() []Host {
	if s.topo == nil {
		return nil
	}
	return s.topo.Hosts
}

// ReplicaAddrs returns the listen addresses of a service's replicas, one per host.
func (s *Stack) ReplicaAddrs(service string) []string {
	if s.topo == nil {
		return []string{s.addrs[service]}
	}
	out := make([]string, 0, len(s.hostAddrs))
	for _, addrs := range s.hostAddrs {
		out = append(out, addrs[service])
	}
	return out
}

// hostAddr returns the listen address of host h's replica of a service.
func (s *Stack) hostAddr(h Host, service string) string {
	for i, x := range s.topo.Hosts {
		if x == h {
			return s.hostAddrs[i][service]
		}
	}
	return ""
}

// Replica returns host h's replica of a service.
func (s *Stack) Replica(service string, h Host) *localstack.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.services[replicaKey(service, h)]
}

// KillHost kills every process of host h with SIGKILL, as a machine that loses power; they stay
// down until StartHost.
func (s *Stack) KillHost(ctx context.Context, h Host) error {
	var errs []error
	for _, name := range hostServiceNames {
		errs = append(errs, s.Replica(name, h).Kill(ctx))
	}
	return errors.Join(errs...)
}

// StartHost starts host h's processes that are down, in start order, and waits until each is
// ready.
func (s *Stack) StartHost(ctx context.Context, h Host) error {
	for _, name := range hostServiceNames {
		if p := s.Replica(name, h); !p.Running() {
			if err := p.Start(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// CutHost partitions host h: its link goes down, its connections hang.
func (s *Stack) CutHost(ctx context.Context, h Host) error { return s.topo.Cut(ctx, h) }

// MendHost ends host h's partition.
func (s *Stack) MendHost(ctx context.Context, h Host) error { return s.topo.Mend(ctx, h) }

// reconcileInterval is the hosts' payments reconciliation interval: one pass a second.
const reconcileInterval = time.Second

// healRedisCluster starts the cluster's nodes that are down and waits until every slot is served
// and every replica in sync.
func (s *Stack) healRedisCluster(ctx context.Context) error {
	var errs []error
	for _, n := range s.RedisCluster.Nodes() {
		errs = append(errs, n.Resume())
		if n.Pid() == 0 {
			errs = append(errs, n.Start(ctx))
		}
	}
	errs = append(errs, s.RedisCluster.WaitHealthy(ctx))
	return errors.Join(errs...)
}

// PromoteStandby promotes PostgreSQL's standby (pg_ctl promote): it becomes PG, and the suite's
// pool drops the sessions of the old primary. Heal makes a new standby.
func (s *Stack) PromoteStandby(ctx context.Context) error {
	if s.PGStandby == nil {
		return errors.New("no PostgreSQL standby to promote")
	}
	if err := s.PGStandby.Promote(ctx); err != nil {
		return err
	}
	s.pgFailed, s.PG, s.PGStandby = s.PG, s.PGStandby, nil
	s.DB.Reset()
	return nil
}

// rebuildStandby makes a new standby of the primary (synchronous unless AsyncStandby) in the
// failed primary's place (its data directory emptied, its port: the hosts' proxies and URLs stay
// valid), as an operator re-seeds a lost node.
func (s *Stack) rebuildStandby(ctx context.Context) error {
	old := s.pgFailed
	if old == nil {
		return errors.New("no standby and no failed primary to rebuild one in")
	}
	if err := old.StopImmediate(ctx); err != nil {
		return err
	}
	s.progress("rebuilding a standby in %s (port %d) from the new primary (synchronous: %t)", old.Dir(), old.Port(), !s.cfg.AsyncStandby)
	if err := os.RemoveAll(old.Dir()); err != nil {
		return fmt.Errorf("emptying the failed primary's data directory: %w", err)
	}
	standby, err := localstack.StartStandby(ctx, localstack.StandbyConfig{Dir: old.Dir(), Port: old.Port(), Primary: s.PG,
		Synchronous: !s.cfg.AsyncStandby, Durable: true})
	if err != nil {
		return err
	}
	s.PGStandby, s.pgFailed = standby, nil
	return nil
}

// healHosts brings every link up and every host's processes back.
func (s *Stack) healHosts(ctx context.Context) error {
	var errs []error
	for _, h := range s.topo.Hosts {
		errs = append(errs, s.MendHost(ctx, h), s.StartHost(ctx, h))
	}
	return errors.Join(errs...)
}

// evaluatorLease is the advisory lock notifications elects its event follower with.
const evaluatorLease = "tally.notifications.evaluator"

// LeaseHolder returns the host whose notifications replica holds the evaluator lease, read from
// PostgreSQL's locks (the session's peer is the proxy, which knows the host behind it), or
// false when none does.
func (s *Stack) LeaseHolder(ctx context.Context) (Host, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var peer string
	err := s.DB.QueryRow(ctx, `SELECT host(a.client_addr) || ':' || a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.objid = (hashtext($1)::bigint & 4294967295)::oid`,
		evaluatorLease).Scan(&peer)
	if errors.Is(err, pgx.ErrNoRows) {
		return Host{}, false, nil
	}
	if err != nil {
		return Host{}, false, fmt.Errorf("reading the evaluator lease: %w", err)
	}
	var client string
	ok := false
	for _, p := range s.pgProxies {
		if client, ok = p.Client(peer); ok {
			break
		}
	}
	if !ok {
		// The session's proxy connection just ended: the lease is being released.
		return Host{}, false, nil
	}
	ip, _, _ := net.SplitHostPort(client)
	for _, h := range s.Hosts() {
		if h.IP == ip {
			return h, true, nil
		}
	}
	return Host{}, false, fmt.Errorf("the evaluator lease is held from %s, not a host", client)
}

// dialReplicas connects to every replica of a service with token; rpcclient balances the calls
// round-robin over those that are ready.
func dialReplicas(addrs []string, token string) (*grpc.ClientConn, error) {
	conn, err := rpcclient.Dial(rpcclient.StaticScheme+":///"+strings.Join(addrs, ","), token)
	if err != nil {
		return nil, fmt.Errorf("dialing %v: %w", addrs, err)
	}
	return conn, nil
}
