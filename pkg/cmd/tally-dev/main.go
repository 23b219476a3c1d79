// Command tally-dev is `make run`: it starts the whole platform on this machine and stops it
// cleanly on Ctrl-C.
//
// It starts a private PostgreSQL and Redis under .data/ unless DATABASE_URL / REDIS_URL are set, a
// local SMTP catcher (mailpit) unless TALLY_SMTP_HOST is set, then every service binary found in
// bin/ on its default port (each applies its own migrations), and prints the URLs and development
// tokens.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/server"
)

// service is one binary of the platform and the port it serves on.
type service struct {
	name string
	port int
	http bool
}

// platform lists the services in start order: the ledger and pricing first, the gateway last.
func platform() []service {
	return []service{
		{"ledger", 9091, false},
		{"pricing", 9092, false},
		{"payments", 9093, false},
		{"instances-metering", 9094, false},
		{"notifications", 9095, false},
		{"gateway", 8080, true},
	}
}

type stopper interface{ Stop(context.Context) error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(ctx, logger); err != nil {
		fmt.Fprintln(os.Stderr, "tally-dev:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) (err error) {
	binDir := localstack.BinDir()
	root := filepath.Dir(binDir)
	data := filepath.Join(root, ".data")
	if err := os.MkdirAll(filepath.Join(data, "logs"), 0o755); err != nil {
		return fmt.Errorf("creating .data: %w", err)
	}
	var started []stopper
	defer func() {
		fmt.Println("\nstopping…")
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := len(started) - 1; i >= 0; i-- {
			if serr := started[i].Stop(sctx); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		fmt.Println("stopped")
	}()

	env := map[string]string{}
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		pg, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: filepath.Join(data, "pg"), Durable: true, Logger: logger})
		if err != nil {
			return err
		}
		started = append(started, pg)
		dbURL = pg.URL()
	}
	env["DATABASE_URL"] = dbURL
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		r, err := localstack.StartRedis(ctx, localstack.RedisConfig{Dir: filepath.Join(data, "redis"), Logger: logger})
		if err != nil {
			return err
		}
		started = append(started, r)
		redisURL = r.URL()
	}
	env["REDIS_URL"] = redisURL
	mailUI := ""
	if os.Getenv("TALLY_SMTP_HOST") == "" {
		mp, err := localstack.StartMailpit(ctx, localstack.MailpitConfig{SMTPPort: freeOr(1025), HTTPPort: freeOr(8025), Dir: filepath.Join(data, "mailpit"), Logger: logger})
		if err != nil {
			return err
		}
		started = append(started, mp)
		host, port, _ := net.SplitHostPort(mp.SMTPAddr())
		env["TALLY_SMTP_HOST"], env["TALLY_SMTP_PORT"], env["TALLY_SMTP_TLS"] = host, port, "none"
		mailUI = mp.HTTPURL()
	}
	// The services get the development conveniences (the built-in secrets, the test-mode
	// checkout) unless TALLY_ENV says otherwise.
	if os.Getenv(config.ModeKey) == "" {
		env[config.ModeKey] = string(config.Development)
	}
	secret := os.Getenv("TALLY_JWT_SECRET")
	if secret == "" {
		secret = server.DevJWTSecret
		env["TALLY_JWT_SECRET"] = secret
	}

	var lines []string
	for _, s := range platform() {
		bin := filepath.Join(binDir, s.name)
		if _, err := os.Stat(bin); err != nil {
			continue // not built (yet)
		}
		p, err := localstack.StartProcess(ctx, localstack.ProcessConfig{
			Name:      s.name,
			Path:      bin,
			Env:       envList(env),
			ReadyAddr: "127.0.0.1:" + strconv.Itoa(s.port),
			LogFile:   filepath.Join(data, "logs", s.name+".log"),
			Logger:    logger,
		})
		if err != nil {
			return fmt.Errorf("starting %s (see .data/logs/%s.log): %w", s.name, s.name, err)
		}
		started = append(started, p)
		kind := "gRPC"
		if s.http {
			kind = "HTTP"
		}
		lines = append(lines, fmt.Sprintf("  %-20s %s localhost:%d", s.name, kind, s.port))
	}

	tokens := map[string]auth.Claims{
		"member of acme": {Subject: "user-ada", OrgID: "acme", Email: "ada@acme.test", Name: "Ada Lovelace", Roles: []auth.Role{auth.RoleMember}},
		"admin of acme":  {Subject: "user-grace", OrgID: "acme", Email: "grace@acme.test", Name: "Grace Hopper", Roles: []auth.Role{auth.RoleAdmin}},
		"ops":            {Subject: "ops-dev", Email: "ops@tally.test", Name: "Ops", Roles: []auth.Role{auth.RoleOps}},
		"model backend":  {Subject: "backend-dev", Roles: []auth.Role{auth.RoleService}},
	}
	fmt.Println("tally is running — Ctrl-C stops everything")
	fmt.Println(strings.Join(lines, "\n"))
	fmt.Println("  REST API             http://localhost:8080  (OpenAPI: http://localhost:8080/openapi.json)")
	if os.Getenv("STRIPE_SECRET_KEY") == "" {
		fmt.Println("  test-mode checkout   http://localhost:8093  (no STRIPE_SECRET_KEY: payments serves a local checkout page)")
	}
	if mailUI != "" {
		fmt.Println("  emails (mailpit)     " + mailUI)
	}
	fmt.Println("  DATABASE_URL         " + dbURL)
	fmt.Println("  REDIS_URL            " + redisURL)
	fmt.Println("  logs                 .data/logs/")
	fmt.Println("development tokens (24h):")
	for _, name := range []string{"member of acme", "admin of acme", "ops", "model backend"} {
		tok, err := auth.Mint([]byte(secret), tokens[name], 24*time.Hour)
		if err != nil {
			return err
		}
		fmt.Printf("  %-15s %s\n", name, tok)
	}
	if f, err := os.Create(filepath.Join(data, "dev-token")); err == nil {
		tok, _ := auth.Mint([]byte(secret), tokens["ops"], 24*time.Hour)
		_, _ = f.WriteString(tok + "\n")
		_ = f.Close()
		fmt.Println("  (the ops token is also in .data/dev-token)")
	}
	<-ctx.Done()
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
