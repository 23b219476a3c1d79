package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/testenv"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// stackServices are the services tallyctl talks to, in start order (the ledger follows
// pricing's catalog; instances-metering and notifications dial the ledger).
var stackServices = []string{"pricing", "ledger", "payments", "notifications", "instances-metering"}

// listenEnv is the variable each service reads its gRPC listen address from.
var listenEnv = map[string]string{
	"ledger": "TALLY_LEDGER_GRPC_ADDR", "pricing": "TALLY_PRICING_GRPC_ADDR", "payments": "TALLY_PAYMENTS_GRPC_ADDR",
	"notifications": "TALLY_NOTIFICATIONS_GRPC_ADDR", "instances-metering": "TALLY_INSTANCES_GRPC_ADDR",
}

// stack is the real platform minus the gateway, as `make run` runs it (development mode, test-mode
// payments, mailpit for SMTP), on free ports, with a stack.json and dev-token as tally-dev writes.
type stack struct {
	dir, stackFile, secret string
	addrs                  map[string]string
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildServices builds the service binaries once per test binary.
func buildServices(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "tallyctl-bin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", buildDir + string(filepath.Separator)}
		for _, s := range stackServices {
			args = append(args, "./services/"+s+"/cmd/"+s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the services: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return buildDir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("no go.work above the test's directory")
		}
	}
}

// startStack starts PostgreSQL (a fresh database), Redis, mailpit and the services.
func startStack(t *testing.T) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the whole platform; skipped with -short")
	}
	bin := buildServices(t)
	s := &stack{dir: t.TempDir(), addrs: map[string]string{}, secret: randomHex(t)}
	for _, name := range append(append([]string{}, stackServices...), "payments-http") {
		port, err := localstack.FreePort()
		require.NoError(t, err)
		s.addrs[name] = "127.0.0.1:" + strconv.Itoa(port)
	}
	mail := testenv.Mailpit(t)
	smtpHost, smtpPort, _ := strings.Cut(mail.SMTPAddr(), ":")
	env := map[string]string{
		"DATABASE_URL": testenv.PostgresURL(t), "REDIS_URL": testenv.RedisURL(t),
		"TALLY_ENV": "development", "TALLY_JWT_SECRET": s.secret, "TALLY_LOG_LEVEL": "warn",
		"TALLY_LEDGER_ADDR": s.addrs["ledger"], "TALLY_PRICING_ADDR": s.addrs["pricing"], "TALLY_PAYMENTS_ADDR": s.addrs["payments"],
		"TALLY_NOTIFICATIONS_ADDR": s.addrs["notifications"], "TALLY_INSTANCES_ADDR": s.addrs["instances-metering"],
		"TALLY_PAYMENTS_HTTP_ADDR": s.addrs["payments-http"], "TALLY_PAYMENTS_PUBLIC_URL": "http://" + s.addrs["payments-http"],
		"TALLY_SMTP_HOST": smtpHost, "TALLY_SMTP_PORT": smtpPort, "TALLY_SMTP_TLS": "none",
		"TALLY_NOTIFICATIONS_POLL_INTERVAL": "100ms",
	}
	for _, name := range stackServices {
		list := []string{listenEnv[name] + "=" + s.addrs[name]}
		for k, v := range env {
			list = append(list, k+"="+v)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		p, err := localstack.StartProcess(ctx, localstack.ProcessConfig{Name: name, Path: filepath.Join(bin, name), Env: list,
			ReadyAddr: s.addrs[name], LogFile: filepath.Join(s.dir, name+".log"), Logger: slog.New(slog.DiscardHandler)})
		cancel()
		require.NoError(t, err, "starting %s (log %s)", name, filepath.Join(s.dir, name+".log"))
		t.Cleanup(func() { _ = p.Stop(context.WithoutCancel(t.Context())) })
		s.waitServing(t, name)
	}
	s.writeStackFile(t)
	return s
}

// waitServing waits until the service's health check says SERVING (migrations applied, the
// price list received).
func (s *stack) waitServing(t *testing.T, name string) {
	t.Helper()
	conn, err := rpcclient.Dial(s.addrs[name], "")
	require.NoError(t, err)
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, time.Minute, 20*time.Millisecond, "%s is not serving (log %s)", name, filepath.Join(s.dir, name+".log"))
}

// writeStackFile writes stack.json and dev-token (an ops token) as tally-dev does.
func (s *stack) writeStackFile(t *testing.T) {
	t.Helper()
	grpcAddrs := map[string]string{}
	for _, name := range stackServices {
		grpcAddrs[name] = s.addrs[name]
	}
	raw, err := json.Marshal(map[string]any{"grpc": grpcAddrs})
	require.NoError(t, err)
	s.stackFile = filepath.Join(s.dir, "stack.json")
	require.NoError(t, os.WriteFile(s.stackFile, raw, 0o600))
	ops := s.token(t, auth.Claims{Subject: "ops-test", Roles: []auth.Role{auth.RoleOps}})
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "dev-token"), []byte(ops+"\n"), 0o600))
}

func (s *stack) token(t *testing.T, c auth.Claims) string {
	t.Helper()
	tok, err := auth.Mint([]byte(s.secret), c, time.Hour)
	require.NoError(t, err)
	return tok
}

// dial opens a connection to a service as the holder of claims (for what ops cannot do: a
// member's top-up).
func (s *stack) dial(t *testing.T, name string, c auth.Claims) *grpc.ClientConn {
	t.Helper()
	conn, err := rpcclient.Dial(s.addrs[name], s.token(t, c))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// result is one tallyctl run.
type result struct {
	stdout, stderr string
	code           int
}

// ctl runs tallyctl against the stack (through --stack, with the stack's ops token) and returns
// what it printed and its exit status.
func (s *stack) ctl(t *testing.T, args ...string) result {
	t.Helper()
	return runCtl(t, nil, append([]string{"--stack", s.stackFile}, args...)...)
}

// ok runs tallyctl and requires success.
func (s *stack) ok(t *testing.T, args ...string) result {
	t.Helper()
	r := s.ctl(t, args...)
	require.Equal(t, exitOK, r.code, "tallyctl %v: stderr: %s", args, r.stderr)
	return r
}

func runCtl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// uniqueOrg is an organization no other test of the run uses.
func uniqueOrg(t *testing.T) string {
	t.Helper()
	return "org-" + randomHex(t)[:12]
}
