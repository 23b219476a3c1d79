package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/rpcclient"
)

// The services the suite runs, in start order (the ledger follows pricing; the gateway dials the
// others). instances-metering runs only on the hosts topology (hostServiceNames), whose scenarios
// check the rentals.
var serviceNames = []string{"pricing", "ledger", "payments", "notifications", "gateway"}

// hostServiceNames are the services every host of the hosts topology runs, in start order: the
// suite's, and instances-metering (whose scheduler charges rentals).
var hostServiceNames = append(append([]string{}, serviceNames[:len(serviceNames)-1]...), "instances-metering", "gateway")

// servicePackages are the main packages built for the suite.
var servicePackages = map[string]string{
	"instances-metering": "./services/instances-metering/cmd/instances-metering",
	"pricing":            "./services/pricing/cmd/pricing",
	"ledger":             "./services/ledger/cmd/ledger",
	"payments":           "./services/payments/cmd/payments",
	"notifications":      "./services/notifications/cmd/notifications",
	"gateway":            "./services/gateway/cmd/gateway",
}

// stripeSecretKey is what payments presents to the Stripe API (stripe-mock accepts any test key).
const stripeSecretKey = "sk_test_tallychaos"

// tokenTTL is the lifetime of the tokens the suite's clients present.
const tokenTTL = 12 * time.Hour

// StackConfig configures StartStack.
type StackConfig struct {
	// Dir holds everything of the run: bin/, pg/, redis/, mailpit/, logs/. Required.
	Dir string
	// BinDir holds prebuilt service binaries; empty builds them into Dir/bin from Root.
	BinDir string
	// Root is the repository (the directory of go.work); empty finds it from the working directory.
	Root string
	// ToolsDir holds stripe-mock and mailpit; empty is localstack.BinDir().
	ToolsDir string
	// Logger receives the servers' lifecycle messages; nil discards them.
	Logger *slog.Logger
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
	// Hosts, when positive, runs a replica of every service on each of that many hosts (network
	// namespaces, see Topology; needs root) instead of one of each on loopback; the suite's
	// clients spread their calls over the replicas. The stores are then a Redis Cluster and a
	// PostgreSQL primary with a synchronous standby.
	Hosts int
	// AsyncStandby makes the hosts' PostgreSQL standby asynchronous (synchronous_standby_names
	// empty): the primary acknowledges commits the standby may not have yet, which a promotion
	// loses. For showing what synchronous commit buys; postgres-promotion then reports losses.
	AsyncStandby bool
}

// Stack is the platform under test: PostgreSQL (fsync on), Redis, stripe-mock behind a fault
// proxy, mailpit and every service as a separate, supervised process.
type Stack struct {
	cfg     StackConfig
	logger  *slog.Logger
	binDir  string
	secret  string
	webhook string // STRIPE_WEBHOOK_SECRET
	addrs   map[string]string
	// PG is PostgreSQL's primary. With hosts, PGStandby is its synchronous streaming standby
	// (nil from a promotion until Heal rebuilds one from pgFailed, the crashed primary's place).
	PG        *localstack.Postgres
	PGStandby *localstack.Postgres
	pgFailed  *localstack.Postgres
	// PGShardB is the hosts' second PostgreSQL cluster, the ledger's shard b (no standby), and
	// ShardB the suite's pool on it; ledgerSharded says the ledger replicas run on both shards.
	PGShardB      *localstack.Postgres
	ShardB        *pgxpool.Pool
	ledgerSharded bool
	shardedAt     time.Time // when the ledger replicas started on both shards (read the map)
	// Redis is the loopback platform's Redis; RedisCluster the hosts' (3 masters, 3 replicas).
	Redis        *localstack.Redis
	RedisCluster *localstack.RedisCluster
	// PGProxy is how the ledger reaches PostgreSQL (replies can be held back there).
	PGProxy  *TCPProxy
	Mail     *localstack.Mailpit
	stripe   *localstack.StripeMock
	Stripe   *FaultProxy
	DB       *pgxpool.Pool
	mu       sync.Mutex
	services map[string]*localstack.Process
	events   []localstack.ProcessEvent
	conns    []*grpc.ClientConn
	// topo is the hosts topology (nil: every service on loopback); hostAddrs[i] are the listen
	// addresses of host i's replicas; stores the addresses services reach the stores at.
	topo      *Topology
	hostAddrs []map[string]string
	stores    storeAddrs
	proxies   []*TCPProxy
	pgProxies []*TCPProxy // the hosts' ways to PostgreSQL: to the primary's port, then the standby's
	nextGW    atomic.Uint64

	// Clients of the suite: ledger as ops and as a model backend, payments as ops.
	LedgerOps     ledgerv1.LedgerServiceClient
	LedgerBackend ledgerv1.LedgerServiceClient
	PaymentsOps   paymentsv1.PaymentsServiceClient
}

// StartStack builds the services (unless BinDir is set) and starts the whole platform.
func StartStack(ctx context.Context, cfg StackConfig) (_ *Stack, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("chaos: StackConfig.Dir is required")
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.ToolsDir == "" {
		cfg.ToolsDir = localstack.BinDir()
	}
	s := &Stack{cfg: cfg, logger: orDiscard(cfg.Logger), addrs: map[string]string{}, services: map[string]*localstack.Process{}}
	defer func() {
		if err != nil {
			s.Stop(context.WithoutCancel(ctx))
		}
	}()
	if s.secret, err = randomHex(24); err != nil {
		return nil, err
	}
	hook, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	s.webhook = "whsec_chaos_" + hook
	for _, sub := range []string{"logs"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", sub, err)
		}
	}

	if err := s.buildServices(ctx); err != nil {
		return nil, err
	}
	if err := s.startStores(ctx); err != nil {
		return nil, err
	}
	if cfg.Hosts > 0 {
		if err := s.startHosts(ctx); err != nil {
			return nil, err
		}
	} else if err := s.startLoopback(ctx); err != nil {
		return nil, err
	}
	if err := s.dialClients(); err != nil {
		return nil, err
	}
	return s, nil
}

// buildServices builds the service binaries into <Dir>/bin unless StackConfig.BinDir names them.
func (s *Stack) buildServices(ctx context.Context) error {
	s.binDir = s.cfg.BinDir
	if s.binDir != "" {
		return nil
	}
	s.binDir = filepath.Join(s.cfg.Dir, "bin")
	root := s.cfg.Root
	if root == "" {
		var err error
		if root, err = findRoot(); err != nil {
			return err
		}
	}
	s.progress("building the services into %s", s.binDir)
	return Build(ctx, root, s.binDir)
}

// startStores starts PostgreSQL (fsync on), Redis (on loopback; the hosts' Redis Cluster starts
// with the topology), stripe-mock behind its fault proxy, mailpit, and the TCP proxy in front of
// PostgreSQL. With hosts, PostgreSQL gets a synchronous streaming standby.
func (s *Stack) startStores(ctx context.Context) error {
	cfg := s.cfg
	s.progress("starting PostgreSQL (fsync on), Redis, stripe-mock, mailpit")
	var err error
	if s.PG, err = localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(cfg.Dir, "pg"), Durable: true, Logger: s.logger}); err != nil {
		return err
	}
	dbURL := s.PG.URL()
	if cfg.Hosts > 0 {
		s.progress("starting PostgreSQL's streaming standby (pg_basebackup of the primary; synchronous: %t)", !cfg.AsyncStandby)
		if s.PGStandby, err = localstack.StartStandby(ctx, localstack.StandbyConfig{Dir: filepath.Join(cfg.Dir, "pg-standby"), Primary: s.PG,
			Synchronous: !cfg.AsyncStandby, Durable: true}); err != nil {
			return err
		}
		// The suite reads whichever of the two is the primary, as the services do.
		dbURL = multiHostURL("127.0.0.1:"+strconv.Itoa(s.PG.Port()), "127.0.0.1:"+strconv.Itoa(s.PGStandby.Port()))
		if err := s.startShardB(ctx); err != nil {
			return err
		}
	} else if s.Redis, err = localstack.StartRedis(ctx, localstack.RedisConfig{Dir: filepath.Join(cfg.Dir, "redis"), Logger: s.logger}); err != nil {
		return err
	}
	if s.stripe, err = localstack.StartStripeMock(ctx, localstack.StripeMockConfig{Bin: filepath.Join(cfg.ToolsDir, "stripe-mock"),
		LogFile: filepath.Join(cfg.Dir, "logs", "stripe-mock.log"), Logger: s.logger}); err != nil {
		return err
	}
	if s.Stripe, err = StartFaultProxy(s.stripe.URL()); err != nil {
		return err
	}
	if s.Mail, err = localstack.StartMailpit(ctx, localstack.MailpitConfig{Bin: filepath.Join(cfg.ToolsDir, "mailpit"),
		Dir: filepath.Join(cfg.Dir, "mailpit"), Logger: s.logger}); err != nil {
		return err
	}
	if s.DB, err = pgxpool.New(ctx, dbURL); err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	s.PGProxy, err = StartTCPProxy("127.0.0.1:" + strconv.Itoa(s.PG.Port()))
	return err
}

// multiHostURL is the URL of the tally database on whichever of addrs is the primary: libpq's
// (and pgx's) multi-host form, target_session_attrs=read-write skipping a standby.
func multiHostURL(addrs ...string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=read-write", strings.Join(addrs, ","), localstack.DefaultDatabase)
}

// startLoopback starts one of every service on loopback.
func (s *Stack) startLoopback(ctx context.Context) error {
	if err := s.pickAddrs(); err != nil {
		return err
	}
	s.stores = storeAddrs{pg: s.PG.URL(), pgLedger: fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", s.PGProxy.Addr(),
		localstack.DefaultDatabase), redis: s.Redis.URL(), smtp: s.Mail.SMTPAddr(), stripe: s.Stripe.URL()}
	for _, name := range serviceNames {
		s.progress("starting %s on %s", name, s.addrs[name])
		if err := s.startService(ctx, name, nil); err != nil {
			return err
		}
	}
	return nil
}

// pickAddrs gives every service, the ledger's metrics and the payments HTTP server a free port.
func (s *Stack) pickAddrs() error {
	for _, name := range append(append([]string{}, serviceNames...), "instances", "ledger-metrics", "payments-http") {
		port, err := localstack.FreePort()
		if err != nil {
			return err
		}
		s.addrs[name] = "127.0.0.1:" + strconv.Itoa(port)
	}
	return nil
}

// Build builds the service binaries of the repository at root into out.
func Build(ctx context.Context, root, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	args := []string{"build", "-o", out + string(filepath.Separator)}
	for _, name := range hostServiceNames {
		args = append(args, servicePackages[name])
	}
	args = append(args, "./pkg/cmd/"+sdkLoadBinary) // the sdk-kill scenario's model backend
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the services: %w\n%s", err, output)
	}
	return nil
}

// findRoot returns the directory of the go.work file above the working directory.
func findRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above %s: run from the repository or pass the service binaries", wd)
		}
		dir = parent
	}
}

// Addr returns the listen address of a service ("ledger", "payments", ...).
func (s *Stack) Addr(name string) string { return s.addrs[name] }

// GatewayURL is the base URL of the REST gateway; with hosts, each call names the next host's.
func (s *Stack) GatewayURL() string {
	if s.topo == nil {
		return "http://" + s.addrs["gateway"]
	}
	addrs := s.ReplicaAddrs("gateway")
	return "http://" + addrs[int(s.nextGW.Add(1)%uint64(len(addrs)))]
}

// Service returns the process of a service.
func (s *Stack) Service(name string) *localstack.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.services[name]
}

// Events returns the supervisor's exits and restarts so far.
func (s *Stack) Events() []localstack.ProcessEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]localstack.ProcessEvent(nil), s.events...)
}

// env returns the environment of a service. The platform runs in production mode (TALLY_ENV
// unset): a real secret, Stripe keys, no development conveniences.
func (s *Stack) env(name string, addrs map[string]string) map[string]string {
	e := map[string]string{
		"DATABASE_URL":             s.stores.pg,
		"TALLY_JWT_SECRET":         s.secret,
		"TALLY_LOG_LEVEL":          "info",
		"TALLY_LEDGER_ADDR":        addrs["ledger"],
		"TALLY_PRICING_ADDR":       addrs["pricing"],
		"TALLY_PAYMENTS_ADDR":      addrs["payments"],
		"TALLY_NOTIFICATIONS_ADDR": addrs["notifications"],
		"TALLY_INSTANCES_ADDR":     addrs["instances"],
	}
	switch name {
	case "ledger":
		e["DATABASE_URL"] = s.stores.pgLedger
		if s.ledgerSharded {
			e["TALLY_LEDGER_SHARDS"] = s.stores.ledgerShards
			e["TALLY_LEDGER_SHARD_MAP_REFRESH"] = shardMapRefresh.String()
		}
		e["REDIS_URL"] = s.stores.redis
		e["TALLY_LEDGER_GRPC_ADDR"] = addrs["ledger"]
		e["TALLY_LEDGER_METRICS_ADDR"] = addrs["ledger-metrics"]
	case "pricing":
		e["TALLY_PRICING_GRPC_ADDR"] = addrs["pricing"]
	case "payments":
		e["TALLY_PAYMENTS_GRPC_ADDR"] = addrs["payments"]
		e["TALLY_PAYMENTS_HTTP_ADDR"] = addrs["payments-http"]
		e["STRIPE_SECRET_KEY"] = stripeSecretKey
		e["STRIPE_WEBHOOK_SECRET"] = s.webhook
		e["TALLY_STRIPE_API_URL"] = s.stores.stripe
		e["TALLY_WEBHOOK_URL"] = "http://" + addrs["gateway"] + "/v1/webhooks/stripe"
		// The retry worker at the pace payments documents for the fault suite: a credit or a
		// refund left behind is retried within about a second of its dependency being back.
		e["TALLY_PAYMENTS_RETRY_INTERVAL"] = "100ms"
		e["TALLY_PAYMENTS_RETRY_BACKOFF"] = "100ms"
		e["TALLY_PAYMENTS_RETRY_MAX_BACKOFF"] = "1s"
		e["TALLY_PAYMENTS_WORK_LEASE"] = "5s"
		e["TALLY_PAYMENTS_LEDGER_TIMEOUT"] = "1s"
		e["TALLY_STRIPE_TIMEOUT"] = "2s"
	case "notifications":
		host, port, _ := net.SplitHostPort(s.stores.smtp)
		e["TALLY_NOTIFICATIONS_GRPC_ADDR"] = addrs["notifications"]
		e["TALLY_SMTP_HOST"], e["TALLY_SMTP_PORT"], e["TALLY_SMTP_TLS"] = host, port, "none"
		e["TALLY_SMTP_TIMEOUT"] = emailSMTPTimeout.String()
		e["TALLY_NOTIFICATIONS_POLL_INTERVAL"] = emailPollInterval.String()
		e["TALLY_NOTIFICATIONS_RETRY_BASE"] = "200ms"
		e["TALLY_NOTIFICATIONS_RETRY_MAX"] = emailRetryMax.String()
		e["TALLY_NOTIFICATIONS_CLAIM_LEASE"] = emailClaimLease.String()
	case "instances-metering":
		e["TALLY_INSTANCES_GRPC_ADDR"] = addrs["instances"]
		e["TALLY_INSTANCE_BILLING_PERIOD"] = rentalPeriod.String()
		e["TALLY_INSTANCE_POLL_INTERVAL"] = "200ms"
		e["TALLY_INSTANCE_CLAIM_LEASE"] = rentalClaimLease.String()
	case "gateway":
		e["TALLY_GATEWAY_HTTP_ADDR"] = addrs["gateway"]
	}
	return e
}

// startService starts a service as a supervised process (restarted with backoff when it dies),
// with extra added to its environment.
func (s *Stack) startService(ctx context.Context, name string, extra map[string]string) error {
	env := s.env(name, s.addrs)
	for k, v := range extra {
		env[k] = v
	}
	p, err := localstack.StartProcess(ctx, localstack.ProcessConfig{
		Name:      name,
		Path:      filepath.Join(s.binDir, name),
		Env:       envList(env),
		ReadyAddr: s.addrs[name],
		LogFile:   filepath.Join(s.cfg.Dir, "logs", name+".log"),
		Logger:    s.logger,
		Restart: &localstack.RestartPolicy{MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second,
			OnEvent: func(ev localstack.ProcessEvent) {
				s.mu.Lock()
				s.events = append(s.events, ev)
				s.mu.Unlock()
			}},
	})
	if err != nil {
		return fmt.Errorf("starting %s (log: %s): %w", name, filepath.Join(s.cfg.Dir, "logs", name+".log"), err)
	}
	s.mu.Lock()
	s.services[name] = p
	s.mu.Unlock()
	return nil
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	return list
}

// ReplaceService stops a service and starts it again with extra added to its environment (nil:
// the normal one).
func (s *Stack) ReplaceService(ctx context.Context, name string, extra map[string]string) error {
	if err := s.Service(name).Stop(ctx); err != nil {
		return err
	}
	return s.startService(ctx, name, extra)
}

// WaitRunning waits until the supervisor has brought every service back after a kill.
func (s *Stack) WaitRunning(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		down := ""
		s.mu.Lock()
		for name, p := range s.services {
			if !p.Running() {
				down = name
				break
			}
		}
		s.mu.Unlock()
		if down == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not running again: %w", down, ctx.Err())
		case <-t.C:
		}
	}
}

// Heal undoes whatever a scenario left behind (it may have stopped half-way): the proxy passes,
// Redis and mailpit run and answer, PostgreSQL runs, and every service is up.
func (s *Stack) Heal(ctx context.Context) error {
	var errs []error
	if s.topo != nil {
		errs = append(errs, s.healHosts(ctx))
	}
	s.PGProxy.DelayReplies(nil, 0)
	errs = append(errs, s.Stripe.SetMode(ProxyPass), s.Mail.Resume())
	switch {
	case s.RedisCluster != nil:
		errs = append(errs, s.healRedisCluster(ctx))
	case !s.redisRunning():
		errs = append(errs, s.Redis.Resume(), s.Redis.Start(ctx))
	default:
		errs = append(errs, s.Redis.Resume())
	}
	if !s.PG.Running() {
		errs = append(errs, s.PG.Start(ctx))
	}
	if s.PGShardB != nil && !s.PGShardB.Running() {
		errs = append(errs, s.PGShardB.Start(ctx))
	}
	if s.topo != nil && s.PGStandby == nil {
		errs = append(errs, s.rebuildStandby(ctx))
	}
	errs = append(errs, s.WaitRunning(ctx, time.Minute))
	return errors.Join(errs...)
}

func (s *Stack) redisRunning() bool {
	conn, err := net.DialTimeout("tcp", s.Redis.Addr(), time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func (s *Stack) dialClients() error {
	ops, err := s.Token(auth.Claims{Subject: "chaos-ops", Roles: []auth.Role{auth.RoleOps}})
	if err != nil {
		return err
	}
	backend, err := s.Token(auth.Claims{Subject: "chaos-backend", Roles: []auth.Role{auth.RoleService}})
	if err != nil {
		return err
	}
	conn, err := s.dial("ledger", ops)
	if err != nil {
		return err
	}
	s.LedgerOps = ledgerv1.NewLedgerServiceClient(conn)
	if conn, err = s.dial("ledger", backend); err != nil {
		return err
	}
	s.LedgerBackend = ledgerv1.NewLedgerServiceClient(conn)
	if conn, err = s.dial("payments", ops); err != nil {
		return err
	}
	s.PaymentsOps = paymentsv1.NewPaymentsServiceClient(conn)
	return nil
}

// Token mints a token for c signed with the stack's secret.
func (s *Stack) Token(c auth.Claims) (string, error) {
	return s.TokenFor(c, tokenTTL)
}

// TokenFor mints a token for c valid for ttl.
func (s *Stack) TokenFor(c auth.Claims, ttl time.Duration) (string, error) {
	tok, err := auth.Mint([]byte(s.secret), c, ttl)
	if err != nil {
		return "", fmt.Errorf("minting a token for %s: %w", c.Subject, err)
	}
	return tok, nil
}

// MemberPayments returns a payments client acting as a member of org.
func (s *Stack) MemberPayments(org string) (paymentsv1.PaymentsServiceClient, error) {
	conn, err := s.memberConn("payments", org, auth.RoleMember)
	if err != nil {
		return nil, err
	}
	return paymentsv1.NewPaymentsServiceClient(conn), nil
}

// AdminNotifications returns a notifications client acting as the admin of org.
func (s *Stack) AdminNotifications(org string) (notificationsv1.NotificationsServiceClient, error) {
	conn, err := s.memberConn("notifications", org, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return notificationsv1.NewNotificationsServiceClient(conn), nil
}

func (s *Stack) memberConn(service, org string, role auth.Role) (*grpc.ClientConn, error) {
	tok, err := s.Token(auth.Claims{Subject: string(role) + "-" + org, OrgID: org, Email: string(role) + "@" + org + ".test",
		Name: "Chaos " + string(role), Roles: []auth.Role{role}})
	if err != nil {
		return nil, err
	}
	return s.dial(service, tok)
}

// dial connects to a service with token: its one replica, or (hosts) all of them, round-robin.
func (s *Stack) dial(service, token string) (*grpc.ClientConn, error) {
	var conn *grpc.ClientConn
	var err error
	if s.topo == nil {
		conn, err = rpcclient.Dial(s.addrs[service], token)
	} else {
		conn, err = dialReplicas(s.ReplicaAddrs(service), token)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.conns = append(s.conns, conn)
	s.mu.Unlock()
	return conn, nil
}

// Stop stops everything, services first.
func (s *Stack) Stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	s.stopServices(ctx)
	if s.DB != nil {
		s.DB.Close()
	}
	if s.ShardB != nil {
		s.ShardB.Close()
	}
	if s.PGProxy != nil {
		s.PGProxy.Close()
	}
	if s.Mail != nil {
		_ = s.Mail.Resume()
		_ = s.Mail.Stop(ctx)
	}
	if s.Stripe != nil {
		s.Stripe.Close()
	}
	if s.stripe != nil {
		_ = s.stripe.Stop(ctx)
	}
	if s.Redis != nil {
		_ = s.Redis.Resume()
		_ = s.Redis.Stop(ctx)
	}
	if s.RedisCluster != nil {
		_ = s.RedisCluster.Stop(ctx)
	}
	for _, pg := range []*localstack.Postgres{s.PG, s.PGStandby, s.pgFailed, s.PGShardB} {
		if pg == nil {
			continue
		}
		if err := pg.Stop(ctx); err != nil {
			s.logger.Warn("stopping postgres", "err", err)
		}
	}
	for _, p := range s.proxies {
		p.Close()
	}
	if s.topo != nil {
		if err := s.topo.Close(ctx); err != nil {
			s.logger.Warn("removing the hosts topology", "err", err)
		}
	}
}

// stopServices stops every service, in the reverse of the start order.
func (s *Stack) stopServices(ctx context.Context) {
	s.mu.Lock()
	procs := make(map[string]*localstack.Process, len(s.services))
	maps.Copy(procs, s.services)
	s.mu.Unlock()
	for i := len(hostServiceNames) - 1; i >= 0; i-- {
		for key, p := range procs {
			if serviceOf(key) != hostServiceNames[i] {
				continue
			}
			if err := p.Stop(ctx); err != nil {
				s.logger.Warn("stopping service", "service", key, "err", err)
			}
		}
	}
}

func (s *Stack) progress(format string, args ...any) {
	fmt.Fprintf(s.cfg.Progress, "chaos: "+format+"\n", args...)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
