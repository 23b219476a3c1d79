// Command tally-dev is `make run`: it starts the whole platform on this machine, keeps it running
// and stops it cleanly on Ctrl-C.
//
// It starts a private PostgreSQL and Redis under .data/ unless DATABASE_URL / REDIS_URL are set, a
// local SMTP catcher (mailpit) unless TALLY_SMTP_HOST is set, then every service binary found in
// bin/ on its default port (each applies its own migrations) with its Prometheus /metrics on a
// port of its own (9191–9195, the gateway's 9180), and prints the URLs, every /metrics URL
// included, and development tokens. A service that dies is restarted with backoff, and every exit and restart is printed.
// Only one stack runs per checkout (a lock in .data/), and a port taken by another program stops
// the start before anything was started.
//
// TALLY_DEV_DATA_DIR moves .data/ elsewhere and TALLY_DEV_PORT_OFFSET adds an offset to every
// port (the browser suite runs its own stack this way while a developer's `make run` is up).
// Once everything answers, the URLs are also written to <data dir>/stack.json for scripts.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/server"
)

// service is one binary of the platform, the port it serves on and the variable that sets it.
type service struct {
	name    string
	port    int
	http    bool
	addrEnv string
	// dialEnv is the variable the other services read the service's address from (empty: none
	// dials it).
	dialEnv string
	// extra are other ports the service listens on (payments' test-mode checkout page).
	extra []int
	// metricsPort serves the service's Prometheus /metrics; metricsEnv is the variable that
	// sets it.
	metricsPort int
	metricsEnv  string
}

// checkoutPort is the default port of payments' test-mode checkout page.
const checkoutPort = 8093

// platform lists the services in start order: the ledger and pricing first, the gateway last.
// testMode says whether payments serves the local checkout page (on 8093).
// Each serves its metrics on a port of its own: 9191–9195 for the gRPC services, 9180 for the
// gateway.
func platform(testMode bool) []service {
	payments := service{"payments", 9093, false, "TALLY_PAYMENTS_GRPC_ADDR", "TALLY_PAYMENTS_ADDR", nil, 9193, "TALLY_PAYMENTS_METRICS_ADDR"}
	if testMode {
		payments.extra = []int{checkoutPort}
	}
	return []service{
		{"ledger", 9091, false, "TALLY_LEDGER_GRPC_ADDR", "TALLY_LEDGER_ADDR", nil, 9191, "TALLY_LEDGER_METRICS_ADDR"},
		{"pricing", 9092, false, "TALLY_PRICING_GRPC_ADDR", "TALLY_PRICING_ADDR", nil, 9192, "TALLY_PRICING_METRICS_ADDR"},
		payments,
		{"instances-metering", 9094, false, "TALLY_INSTANCES_GRPC_ADDR", "TALLY_INSTANCES_ADDR", nil, 9194, "TALLY_INSTANCES_METRICS_ADDR"},
		{"notifications", 9095, false, "TALLY_NOTIFICATIONS_GRPC_ADDR", "TALLY_NOTIFICATIONS_ADDR", nil, 9195, "TALLY_NOTIFICATIONS_METRICS_ADDR"},
		{"gateway", 8080, true, "TALLY_GATEWAY_HTTP_ADDR", "", nil, 9180, "TALLY_GATEWAY_METRICS_ADDR"},
	}
}

// The variables that move a stack off the defaults.
const (
	dataDirEnv    = "TALLY_DEV_DATA_DIR"
	portOffsetEnv = "TALLY_DEV_PORT_OFFSET"
)

// maxPortOffset keeps the highest port (9195) below 65536.
const maxPortOffset = 55000

// placement reads where a stack lives: its data directory (defaultDir unless TALLY_DEV_DATA_DIR
// is set) and the offset added to every port (TALLY_DEV_PORT_OFFSET, default 0).
func placement(getenv func(string) string, defaultDir string) (dataDir string, offset int, err error) {
	dataDir = defaultDir
	if d := getenv(dataDirEnv); d != "" {
		if dataDir, err = filepath.Abs(d); err != nil {
			return "", 0, fmt.Errorf("%s: %w", dataDirEnv, err)
		}
	}
	if v := getenv(portOffsetEnv); v != "" {
		offset, err = strconv.Atoi(v)
		if err != nil || offset < 0 || offset > maxPortOffset {
			return "", 0, fmt.Errorf("%s=%q: want a whole number from 0 to %d", portOffsetEnv, v, maxPortOffset)
		}
	}
	return dataDir, offset, nil
}

// shifted returns the services with offset added to each of their ports.
func shifted(services []service, offset int) []service {
	out := make([]service, len(services))
	for i, s := range services {
		s.port += offset
		if s.metricsPort != 0 {
			s.metricsPort += offset
		}
		extra := make([]int, len(s.extra))
		for j, p := range s.extra {
			extra[j] = p + offset
		}
		s.extra = extra
		out[i] = s
	}
	return out
}

// stackInfo is <data dir>/stack.json: where a running stack answers.
type stackInfo struct {
	GatewayURL  string `json:"gatewayUrl"`
	ConsoleURL  string `json:"consoleUrl"`
	CheckoutURL string `json:"checkoutUrl,omitempty"`
	MailpitURL  string `json:"mailpitUrl,omitempty"`
	SMTPAddr    string `json:"smtpAddr,omitempty"`
	// GRPC is each service's gRPC address by name.
	GRPC map[string]string `json:"grpc"`
	// Metrics is each service's (and the gateway's) Prometheus /metrics URL by name.
	Metrics     map[string]string `json:"metrics"`
	DatabaseURL string            `json:"databaseUrl"`
	RedisURL    string            `json:"redisUrl"`
	LogsDir     string            `json:"logsDir"`
	Pid         int               `json:"pid"`
}

const stackFile = "stack.json"

type stopper interface{ Stop(context.Context) error }

// devConfig is what run needs from its surroundings; main fills it from the checkout and the
// environment, tests with fakes.
type devConfig struct {
	binDir  string
	dataDir string
	// consoleDir holds the built console (web/dist), served by the gateway.
	consoleDir string
	// services to start; nil means platform(). Their ports are shifted by portOffset.
	services   []service
	portOffset int
	getenv     func(string) string
	out        io.Writer
	logger     *slog.Logger
	// restart is the supervisors' backoff.
	restart localstack.RestartPolicy
	// started, when set, is told about each service process (tests).
	started func(name string, p *localstack.Process)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	binDir := localstack.BinDir()
	dataDir, offset, err := placement(os.Getenv, filepath.Join(filepath.Dir(binDir), ".data"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "tally-dev:", err)
		os.Exit(2)
	}
	cfg := devConfig{
		binDir:     binDir,
		dataDir:    dataDir,
		portOffset: offset,
		// The console is built by `make web` into web/dist; the gateway says so until it exists.
		consoleDir: filepath.Join(filepath.Dir(binDir), "web", "dist"),
		getenv:     os.Getenv,
		out:        os.Stdout,
		logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		restart:    localstack.RestartPolicy{MinBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second, StableAfter: time.Minute},
	}
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "tally-dev:", err)
		os.Exit(1)
	}
}

// lockName is the lock file of a running stack, under the data directory.
const lockName = "tally-dev.lock"

func run(ctx context.Context, cfg devConfig) (err error) {
	// One stack per checkout: a second one would restart the first one's PostgreSQL under it
	// and fight over the ports. Nothing is touched before the lock is held.
	lock, err := lockStack(cfg.dataDir)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Unlock() }()

	st := &stack{cfg: cfg, env: map[string]string{},
		info: stackInfo{GRPC: map[string]string{}, Metrics: map[string]string{}, LogsDir: filepath.Join(cfg.dataDir, "logs"), Pid: os.Getpid()}}
	present, err := st.plan(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(cfg.dataDir, "logs"), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", cfg.dataDir, err)
	}
	defer func() { err = errors.Join(err, st.stop(ctx)) }()

	if err := st.startStores(ctx); err != nil {
		return err
	}
	secret := cfg.getenv("TALLY_JWT_SECRET")
	if secret == "" {
		secret = server.DevJWTSecret
		st.env["TALLY_JWT_SECRET"] = secret
	}
	events := &eventPrinter{out: cfg.out}
	lines, err := st.startServices(ctx, present, events)
	if err != nil {
		return err
	}
	if err := st.printBanner(lines, secret); err != nil {
		return err
	}
	if err := writeStackInfo(filepath.Join(cfg.dataDir, stackFile), st.info); err != nil {
		return err
	}
	events.ready()
	<-ctx.Done()
	return nil
}

// lockStack takes the checkout's stack lock, or says which tally-dev holds it.
func lockStack(dataDir string) (*localstack.FileLock, error) {
	lock, err := localstack.Lock(filepath.Join(dataDir, lockName))
	var locked *localstack.LockedError
	if errors.As(err, &locked) {
		holder := "another tally-dev"
		if locked.Pid > 0 {
			holder = fmt.Sprintf("tally-dev (pid %d)", locked.Pid)
		}
		return nil, fmt.Errorf("a tally stack is already running from this checkout: %s holds %s. "+
			"Stop it (Ctrl-C in its terminal) before starting another; nothing was started or changed", holder, locked.Path)
	}
	return lock, err
}

// stack is a starting or running stack: the services' environment, what stack.json says and
// what was started (stopped in reverse order).
type stack struct {
	cfg     devConfig
	env     map[string]string
	info    stackInfo
	started []stopper
}

// plan sets the services' environment and returns the services whose binaries are built, once
// none of their ports is taken.
func (st *stack) plan(ctx context.Context) ([]service, error) {
	cfg := st.cfg
	// The services get the development conveniences (the built-in secrets, the test-mode
	// checkout) unless TALLY_ENV says otherwise.
	if cfg.getenv(config.ModeKey) == "" {
		st.env[config.ModeKey] = string(config.Development)
	}
	// The gateway serves the console; payments and notifications link to it.
	// (TALLY_CONSOLE_URL follows the gateway's port, below.)
	for k, v := range map[string]string{"TALLY_CONSOLE_DIR": cfg.consoleDir} {
		if cfg.getenv(k) == "" && v != "" {
			st.env[k] = v
		}
	}
	testMode := cfg.getenv("STRIPE_SECRET_KEY") == ""
	services := cfg.services
	if services == nil {
		services = platform(testMode)
	}
	services = shifted(services, cfg.portOffset)
	var present []service
	for _, s := range services {
		if _, err := os.Stat(filepath.Join(cfg.binDir, s.name)); err != nil {
			fmt.Fprintf(cfg.out, "tally-dev: %s is not built (no %s), skipping it\n", s.name, filepath.Join(cfg.binDir, s.name))
			continue
		}
		present = append(present, s)
	}
	// A port taken by another program: say so before starting anything, instead of a service
	// that cannot bind while the other program answers in its place.
	if err := checkPorts(ctx, present); err != nil {
		return nil, err
	}
	for k, v := range addresses(present, testMode, &st.info) {
		st.env[k] = v
	}
	// A console served elsewhere (a Vite dev server) is the developer's to name.
	if u := cfg.getenv("TALLY_CONSOLE_URL"); u != "" {
		st.env["TALLY_CONSOLE_URL"], st.info.ConsoleURL = u, u
	}
	return present, nil
}

// stop removes stack.json and stops what was started, last first, for up to a minute after ctx
// ends.
func (st *stack) stop(ctx context.Context) error {
	_ = os.Remove(filepath.Join(st.cfg.dataDir, stackFile))
	fmt.Fprintln(st.cfg.out, "\nstopping…")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var err error
	for i := len(st.started) - 1; i >= 0; i-- {
		if serr := st.started[i].Stop(sctx); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	fmt.Fprintln(st.cfg.out, "stopped")
	return err
}

// startStores starts PostgreSQL, Redis and mailpit unless the environment names them.
func (st *stack) startStores(ctx context.Context) error {
	cfg := st.cfg
	dbURL := cfg.getenv("DATABASE_URL")
	if dbURL == "" {
		pg, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(cfg.dataDir, "pg"), Durable: true, Logger: cfg.logger})
		if err != nil {
			return err
		}
		st.started = append(st.started, pg)
		dbURL = pg.URL()
	}
	st.env["DATABASE_URL"] = dbURL
	redisURL := cfg.getenv("REDIS_URL")
	if redisURL == "" {
		r, err := localstack.StartRedis(ctx, localstack.RedisConfig{Dir: filepath.Join(cfg.dataDir, "redis"), Logger: cfg.logger})
		if err != nil {
			return err
		}
		st.started = append(st.started, r)
		redisURL = r.URL()
	}
	st.env["REDIS_URL"] = redisURL
	st.info.DatabaseURL, st.info.RedisURL = dbURL, redisURL
	if cfg.getenv("TALLY_SMTP_HOST") == "" {
		mp, err := localstack.StartMailpit(ctx, localstack.MailpitConfig{SMTPPort: freeOr(ctx, 1025+cfg.portOffset), HTTPPort: freeOr(ctx, 8025+cfg.portOffset),
			Dir: filepath.Join(cfg.dataDir, "mailpit"), Logger: cfg.logger})
		if err != nil {
			return err
		}
		st.started = append(st.started, mp)
		host, port, _ := net.SplitHostPort(mp.SMTPAddr())
		st.env["TALLY_SMTP_HOST"], st.env["TALLY_SMTP_PORT"], st.env["TALLY_SMTP_TLS"] = host, port, "none"
		st.info.MailpitURL = mp.HTTPURL()
		st.info.SMTPAddr = mp.SMTPAddr()
	}
	return nil
}

// startServices starts a supervised process of each service and returns the banner's line of
// each.
func (st *stack) startServices(ctx context.Context, present []service, events *eventPrinter) ([]string, error) {
	cfg := st.cfg
	policy := cfg.restart
	policy.OnEvent = events.print
	var lines []string
	for _, s := range present {
		list := append(envList(st.env), s.addrEnv+"=:"+strconv.Itoa(s.port))
		if s.metricsPort != 0 {
			list = append(list, s.metricsEnv+"=:"+strconv.Itoa(s.metricsPort))
		}
		p, err := localstack.StartProcess(ctx, localstack.ProcessConfig{
			Name:      s.name,
			Path:      filepath.Join(cfg.binDir, s.name),
			Env:       list,
			ReadyAddr: "127.0.0.1:" + strconv.Itoa(s.port),
			LogFile:   filepath.Join(cfg.dataDir, "logs", s.name+".log"),
			Restart:   &policy,
			Logger:    cfg.logger,
		})
		if err != nil {
			return nil, fmt.Errorf("starting %s (see %s): %w", s.name, filepath.Join(cfg.dataDir, "logs", s.name+".log"), err)
		}
		st.started = append(st.started, p)
		if cfg.started != nil {
			cfg.started(s.name, p)
		}
		kind := "gRPC"
		if s.http {
			kind = "HTTP"
		}
		line := fmt.Sprintf("  %-20s %-4s localhost:%d", s.name, kind, s.port)
		if u := st.info.Metrics[s.name]; u != "" {
			line += "  metrics " + u
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// printBanner prints the URLs and development tokens, and writes the ops token to dev-token.
func (st *stack) printBanner(lines []string, secret string) error {
	out, info := st.cfg.out, st.info
	fmt.Fprintln(out, "tally is running — Ctrl-C stops everything; a service that dies is restarted (shown here)")
	fmt.Fprintln(out, strings.Join(lines, "\n"))
	if info.GatewayURL != "" {
		fmt.Fprintf(out, "  console              %s/\n", info.ConsoleURL)
		fmt.Fprintf(out, "  REST API             %s  (OpenAPI: %s/openapi.json)\n", info.GatewayURL, info.GatewayURL)
	}
	if info.CheckoutURL != "" {
		fmt.Fprintf(out, "  test-mode checkout   %s  (no STRIPE_SECRET_KEY: payments serves a local checkout page)\n", info.CheckoutURL)
	}
	if info.MailpitURL != "" {
		fmt.Fprintln(out, "  emails (mailpit)     "+info.MailpitURL)
	}
	fmt.Fprintln(out, "  DATABASE_URL         "+info.DatabaseURL)
	fmt.Fprintln(out, "  REDIS_URL            "+info.RedisURL)
	fmt.Fprintln(out, "  logs                 "+filepath.Join(st.cfg.dataDir, "logs"))
	return st.printTokens(secret)
}

// printTokens prints a development token of each development user.
func (st *stack) printTokens(secret string) error {
	out := st.cfg.out
	fmt.Fprintln(out, "development tokens (24h):")
	var opsToken string
	for _, u := range auth.DevUsers() {
		tok, err := auth.Mint([]byte(secret), u.Claims, 24*time.Hour)
		if err != nil {
			return err
		}
		if u.Key == "ops" {
			opsToken = tok
		}
		fmt.Fprintf(out, "  %-15s %s\n", u.Label, tok)
	}
	if f, err := os.Create(filepath.Join(st.cfg.dataDir, "dev-token")); err == nil {
		_, _ = f.WriteString(opsToken + "\n")
		_ = f.Close()
		fmt.Fprintln(out, "  (the ops token is also in "+filepath.Join(st.cfg.dataDir, "dev-token")+")")
	}
	return nil
}

// addresses returns the environment that tells each service where the others are: the dial
// address of every gRPC service, the test-mode checkout's listen address and public URL, the
// gateway's webhook route and the console's URL (the gateway serves it). It fills info with the
// same addresses.
func addresses(services []service, testMode bool, info *stackInfo) map[string]string {
	env := map[string]string{}
	for _, s := range services {
		addr := "localhost:" + strconv.Itoa(s.port)
		if s.metricsPort != 0 {
			info.Metrics[s.name] = "http://localhost:" + strconv.Itoa(s.metricsPort) + "/metrics"
		}
		if s.dialEnv != "" {
			env[s.dialEnv] = addr
			info.GRPC[s.name] = addr
		}
		switch {
		case s.name == "payments" && testMode && len(s.extra) > 0:
			env["TALLY_PAYMENTS_HTTP_ADDR"] = ":" + strconv.Itoa(s.extra[0])
			info.CheckoutURL = "http://localhost:" + strconv.Itoa(s.extra[0])
			env["TALLY_PAYMENTS_PUBLIC_URL"] = info.CheckoutURL
		case s.name == "gateway":
			info.GatewayURL = "http://" + addr
			info.ConsoleURL = info.GatewayURL
			env["TALLY_WEBHOOK_URL"] = info.GatewayURL + "/v1/webhooks/stripe"
			env["TALLY_CONSOLE_URL"] = info.ConsoleURL
		}
	}
	return env
}

// writeStackInfo writes info to path atomically (a reader never sees half a file).
func writeStackInfo(path string, info stackInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// eventPrinter shows the supervisors' exits and restarts; those of the start-up are shown once
// the banner is out.
type eventPrinter struct {
	out     io.Writer
	mu      sync.Mutex
	started bool
	held    []localstack.ProcessEvent
}

func (e *eventPrinter) print(ev localstack.ProcessEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		e.held = append(e.held, ev)
		return
	}
	fmt.Fprintf(e.out, "%s tally-dev: %s\n", time.Now().Format("15:04:05"), ev)
}

func (e *eventPrinter) ready() {
	e.mu.Lock()
	held := e.held
	e.started, e.held = true, nil
	e.mu.Unlock()
	for _, ev := range held {
		e.print(ev)
	}
}

// checkPorts fails, naming every one, when a port of the services is taken.
func checkPorts(ctx context.Context, services []service) error {
	var busy []string
	for _, s := range services {
		ports := append([]int{s.port}, s.extra...)
		if s.metricsPort != 0 {
			ports = append(ports, s.metricsPort)
		}
		for _, port := range ports {
			l, err := new(net.ListenConfig).Listen(ctx, "tcp", ":"+strconv.Itoa(port))
			if err != nil {
				busy = append(busy, fmt.Sprintf("%d (%s)", port, s.name))
				continue
			}
			_ = l.Close()
		}
	}
	switch {
	case len(busy) == 1:
		return fmt.Errorf("port %s is already in use by another program (a tally stack of another checkout?): "+
			"stop it first; nothing was started", busy[0])
	case len(busy) > 1:
		return fmt.Errorf("ports %s are already in use by another program (a tally stack of another checkout?): "+
			"stop it first; nothing was started", strings.Join(busy, ", "))
	}
	return nil
}

// freeOr returns port when it is free, else 0 (a free port will be picked).
func freeOr(ctx context.Context, port int) int {
	l, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return 0
	}
	_ = l.Close()
	return port
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}
