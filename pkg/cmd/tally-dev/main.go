// Command tally-dev is `make run`: it starts the whole platform on this machine, keeps it running
// and stops it cleanly on Ctrl-C.
//
// It starts a private PostgreSQL and Redis under .data/ unless DATABASE_URL / REDIS_URL are set, a
// local SMTP catcher (mailpit) unless TALLY_SMTP_HOST is set, then every service binary found in
// bin/ on its default port (each applies its own migrations), and prints the URLs and development
// tokens. A service that dies is restarted with backoff, and every exit and restart is printed.
// Only one stack runs per checkout (a lock in .data/), and a port taken by another program stops
// the start before anything was started.
package main

import (
	"context"
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
	// extra are other ports the service listens on (payments' test-mode checkout page).
	extra []int
}

// platform lists the services in start order: the ledger and pricing first, the gateway last.
// testMode says whether payments serves the local checkout page (on 8093).
func platform(testMode bool) []service {
	payments := service{"payments", 9093, false, "TALLY_PAYMENTS_GRPC_ADDR", nil}
	if testMode {
		payments.extra = []int{8093}
	}
	return []service{
		{"ledger", 9091, false, "TALLY_LEDGER_GRPC_ADDR", nil},
		{"pricing", 9092, false, "TALLY_PRICING_GRPC_ADDR", nil},
		payments,
		{"instances-metering", 9094, false, "TALLY_INSTANCES_GRPC_ADDR", nil},
		{"notifications", 9095, false, "TALLY_NOTIFICATIONS_GRPC_ADDR", nil},
		{"gateway", 8080, true, "TALLY_GATEWAY_HTTP_ADDR", nil},
	}
}

type stopper interface{ Stop(context.Context) error }

// devConfig is what run needs from its surroundings; main fills it from the checkout and the
// environment, tests with fakes.
type devConfig struct {
	binDir  string
	dataDir string
	// consoleDir holds the built console (web/dist), served by the gateway.
	consoleDir string
	// services to start; nil means platform().
	services []service
	getenv   func(string) string
	out      io.Writer
	logger   *slog.Logger
	// restart is the supervisors' backoff.
	restart localstack.RestartPolicy
	// started, when set, is told about each service process (tests).
	started func(name string, p *localstack.Process)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	binDir := localstack.BinDir()
	cfg := devConfig{
		binDir:  binDir,
		dataDir: filepath.Join(filepath.Dir(binDir), ".data"),
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

// consoleURL is where the gateway serves the console in development.
const consoleURL = "http://localhost:8080"

// lockName is the lock file of a running stack, under the data directory.
const lockName = "tally-dev.lock"

func run(ctx context.Context, cfg devConfig) (err error) {
	// One stack per checkout: a second one would restart the first one's PostgreSQL under it
	// and fight over the ports. Nothing is touched before the lock is held.
	lock, err := localstack.Lock(filepath.Join(cfg.dataDir, lockName))
	var locked *localstack.LockedError
	if errors.As(err, &locked) {
		holder := "another tally-dev"
		if locked.Pid > 0 {
			holder = fmt.Sprintf("tally-dev (pid %d)", locked.Pid)
		}
		return fmt.Errorf("a tally stack is already running from this checkout: %s holds %s. "+
			"Stop it (Ctrl-C in its terminal) before starting another; nothing was started or changed", holder, locked.Path)
	}
	if err != nil {
		return err
	}
	defer func() { _ = lock.Unlock() }()

	env := map[string]string{}
	// The services get the development conveniences (the built-in secrets, the test-mode
	// checkout) unless TALLY_ENV says otherwise.
	if cfg.getenv(config.ModeKey) == "" {
		env[config.ModeKey] = string(config.Development)
	}
	// The gateway serves the console; payments and notifications link to it.
	for k, v := range map[string]string{"TALLY_CONSOLE_DIR": cfg.consoleDir, "TALLY_CONSOLE_URL": consoleURL} {
		if cfg.getenv(k) == "" && v != "" {
			env[k] = v
		}
	}
	testMode := cfg.getenv("STRIPE_SECRET_KEY") == ""
	services := cfg.services
	if services == nil {
		services = platform(testMode)
	}
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
	if err := checkPorts(present); err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Join(cfg.dataDir, "logs"), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", cfg.dataDir, err)
	}
	var started []stopper
	defer func() {
		fmt.Fprintln(cfg.out, "\nstopping…")
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := len(started) - 1; i >= 0; i-- {
			if serr := started[i].Stop(sctx); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		fmt.Fprintln(cfg.out, "stopped")
	}()

	dbURL := cfg.getenv("DATABASE_URL")
	if dbURL == "" {
		pg, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(cfg.dataDir, "pg"), Durable: true, Logger: cfg.logger})
		if err != nil {
			return err
		}
		started = append(started, pg)
		dbURL = pg.URL()
	}
	env["DATABASE_URL"] = dbURL
	redisURL := cfg.getenv("REDIS_URL")
	if redisURL == "" {
		r, err := localstack.StartRedis(ctx, localstack.RedisConfig{Dir: filepath.Join(cfg.dataDir, "redis"), Logger: cfg.logger})
		if err != nil {
			return err
		}
		started = append(started, r)
		redisURL = r.URL()
	}
	env["REDIS_URL"] = redisURL
	mailUI := ""
	if cfg.getenv("TALLY_SMTP_HOST") == "" {
		mp, err := localstack.StartMailpit(ctx, localstack.MailpitConfig{SMTPPort: freeOr(1025), HTTPPort: freeOr(8025),
			Dir: filepath.Join(cfg.dataDir, "mailpit"), Logger: cfg.logger})
		if err != nil {
			return err
		}
		started = append(started, mp)
		host, port, _ := net.SplitHostPort(mp.SMTPAddr())
		env["TALLY_SMTP_HOST"], env["TALLY_SMTP_PORT"], env["TALLY_SMTP_TLS"] = host, port, "none"
		mailUI = mp.HTTPURL()
	}
	secret := cfg.getenv("TALLY_JWT_SECRET")
	if secret == "" {
		secret = server.DevJWTSecret
		env["TALLY_JWT_SECRET"] = secret
	}

	events := &eventPrinter{out: cfg.out}
	policy := cfg.restart
	policy.OnEvent = events.print
	var lines []string
	for _, s := range present {
		list := append(envList(env), s.addrEnv+"=:"+strconv.Itoa(s.port))
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
			return fmt.Errorf("starting %s (see %s): %w", s.name, filepath.Join(cfg.dataDir, "logs", s.name+".log"), err)
		}
		started = append(started, p)
		if cfg.started != nil {
			cfg.started(s.name, p)
		}
		kind := "gRPC"
		if s.http {
			kind = "HTTP"
		}
		lines = append(lines, fmt.Sprintf("  %-20s %s localhost:%d", s.name, kind, s.port))
	}

	out := cfg.out
	fmt.Fprintln(out, "tally is running — Ctrl-C stops everything; a service that dies is restarted (shown here)")
	fmt.Fprintln(out, strings.Join(lines, "\n"))
	fmt.Fprintln(out, "  console              "+consoleURL+"/")
	fmt.Fprintln(out, "  REST API             http://localhost:8080  (OpenAPI: http://localhost:8080/openapi.json)")
	if testMode {
		fmt.Fprintln(out, "  test-mode checkout   http://localhost:8093  (no STRIPE_SECRET_KEY: payments serves a local checkout page)")
	}
	if mailUI != "" {
		fmt.Fprintln(out, "  emails (mailpit)     "+mailUI)
	}
	fmt.Fprintln(out, "  DATABASE_URL         "+dbURL)
	fmt.Fprintln(out, "  REDIS_URL            "+redisURL)
	fmt.Fprintln(out, "  logs                 "+filepath.Join(cfg.dataDir, "logs"))
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
	if f, err := os.Create(filepath.Join(cfg.dataDir, "dev-token")); err == nil {
		_, _ = f.WriteString(opsToken + "\n")
		_ = f.Close()
		fmt.Fprintln(out, "  (the ops token is also in .data/dev-token)")
	}
	events.ready()
	<-ctx.Done()
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
func checkPorts(services []service) error {
	var busy []string
	for _, s := range services {
		for _, port := range append([]int{s.port}, s.extra...) {
			l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
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
func freeOr(port int) int {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
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
