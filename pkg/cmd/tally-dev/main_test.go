package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/localstack"
)

// fakeEnv makes the test binary a fake service: run under a service's name, it listens where
// tally-dev tells that service to (see TestMain). With fakeEnvDir set, it first writes the
// environment it was given to <dir>/<name>.env.
const (
	fakeEnv    = "TALLY_DEV_FAKE_SERVICE"
	fakeEnvDir = "TALLY_DEV_FAKE_ENV_DIR"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeService())
	}
	os.Exit(m.Run())
}

func fakeService() int {
	name := filepath.Base(os.Args[0])
	for _, s := range platform(true) {
		if s.name != name {
			continue
		}
		if dir := os.Getenv(fakeEnvDir); dir != "" {
			if err := os.WriteFile(filepath.Join(dir, name+".env"), []byte(strings.Join(os.Environ(), "\n")), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "writing env:", err)
				return 1
			}
		}
		l, err := net.Listen("tcp", os.Getenv(s.addrEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			return 1
		}
		for {
			c, err := l.Accept()
			if err != nil {
				return 1
			}
			_ = c.Close()
		}
	}
	fmt.Fprintln(os.Stderr, "not a service:", name)
	return 2
}

// syncBuffer is an output safe for the supervisors' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeStack is a checkout with fake services on free ports, and external PostgreSQL, Redis and
// SMTP (so none is started).
type fakeStack struct {
	cfg   devConfig
	out   *syncBuffer
	mu    sync.Mutex
	procs map[string]*localstack.Process
}

func newFakeStack(t *testing.T, names ...string) *fakeStack {
	t.Helper()
	t.Setenv(fakeEnv, "1")
	self, err := os.Executable()
	require.NoError(t, err)
	root := t.TempDir()
	binDir := filepath.Join(root, "bin")
	require.NoError(t, os.MkdirAll(binDir, 0o755))
	f := &fakeStack{out: &syncBuffer{}, procs: map[string]*localstack.Process{}}
	var services []service
	for _, s := range platform(true) {
		for _, n := range names {
			if s.name != n {
				continue
			}
			require.NoError(t, os.Symlink(self, filepath.Join(binDir, s.name)))
			port, err := localstack.FreePort()
			require.NoError(t, err)
			metrics, err := localstack.FreePort()
			require.NoError(t, err)
			s.port, s.extra, s.metricsPort = port, nil, metrics
			services = append(services, s)
		}
	}
	env := map[string]string{"DATABASE_URL": "postgres://external/tally", "REDIS_URL": "redis://external:6379/0", "TALLY_SMTP_HOST": "smtp.external"}
	f.cfg = devConfig{
		binDir: binDir, dataDir: filepath.Join(root, ".data"), services: services,
		getenv: func(k string) string { return env[k] }, out: f.out,
		logger:  slog.New(slog.DiscardHandler),
		restart: localstack.RestartPolicy{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		started: func(name string, p *localstack.Process) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.procs[name] = p
		},
	}
	return f
}

func (f *fakeStack) proc(name string) *localstack.Process {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[name]
}

// start runs tally-dev until the test ends and waits for its banner.
func (f *fakeStack) start(t *testing.T) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, f.cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("tally-dev stopped with: %v", err)
		}
	})
	require.Eventually(t, func() bool { return bytes.Contains([]byte(f.out.String()), []byte("tally is running")) }, time.Minute,
		10*time.Millisecond, "output: %s", f.out.String())
	return done
}

func TestRunRestartsACrashedServiceAndShowsIt(t *testing.T) {
	f := newFakeStack(t, "ledger", "gateway")
	f.start(t)
	ledger := f.proc("ledger")
	require.NotNil(t, ledger)
	pid := ledger.Pid()

	require.NoError(t, ledger.Kill(t.Context()))
	require.Eventually(t, func() bool { return ledger.Running() && ledger.Pid() != pid }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		out := f.out.String()
		return bytes.Contains([]byte(out), []byte("tally-dev: ledger exited (signal: killed); restarting in 50ms")) &&
			bytes.Contains([]byte(out), []byte("tally-dev: ledger restarted (pid "+strconv.Itoa(ledger.Pid())+", restart 1)"))
	}, 30*time.Second, 10*time.Millisecond, "output: %s", f.out.String())
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(f.cfg.services[0].port), time.Second)
	require.NoError(t, err, "the ledger serves again")
	_ = conn.Close()
	require.True(t, f.proc("gateway").Running(), "the others keep running")
}

func TestRunRefusesASecondStackOnTheSameCheckout(t *testing.T) {
	f := newFakeStack(t, "ledger")
	// The first stack of this checkout holds the lock.
	first, err := localstack.Lock(filepath.Join(f.cfg.dataDir, lockName))
	require.NoError(t, err)
	defer func() { _ = first.Unlock() }()

	err = run(t.Context(), f.cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), "a tally stack is already running from this checkout")
	require.Contains(t, err.Error(), fmt.Sprintf("pid %d", os.Getpid()))
	require.Contains(t, err.Error(), "nothing was started or changed")
	require.NotContains(t, f.out.String(), "tally is running")
	require.Nil(t, f.proc("ledger"), "no service started")
	entries, err := os.ReadDir(f.cfg.dataDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing but the lock in .data")
	require.Equal(t, lockName, entries[0].Name())
}

func TestRunFailsLoudlyWhenAPortIsTaken(t *testing.T) {
	f := newFakeStack(t, "ledger", "gateway")
	gateway := f.cfg.services[1]
	squatter, err := net.Listen("tcp", ":"+strconv.Itoa(gateway.port))
	require.NoError(t, err)
	defer squatter.Close()

	err = run(t.Context(), f.cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), fmt.Sprintf("port %d (gateway) is already in use", gateway.port))
	require.Contains(t, err.Error(), "nothing was started")
	require.NotContains(t, f.out.String(), "tally is running")
	require.Nil(t, f.proc("ledger"), "the ledger was not started either")

	// Once the port is free, the lock taken by the failed run is free too.
	require.NoError(t, squatter.Close())
	f.start(t)
}

func TestRunStopsEverythingOnCancel(t *testing.T) {
	f := newFakeStack(t, "ledger", "pricing")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, f.cfg) }()
	require.Eventually(t, func() bool { return bytes.Contains([]byte(f.out.String()), []byte("tally is running")) }, time.Minute, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, f.out.String(), "stopped")
	for _, name := range []string{"ledger", "pricing"} {
		require.False(t, f.proc(name).Running(), name)
	}
	again, err := localstack.Lock(filepath.Join(f.cfg.dataDir, lockName))
	require.NoError(t, err, "the lock is released")
	require.NoError(t, again.Unlock())
}

func TestPlacement(t *testing.T) {
	t.Parallel()
	abs, err := filepath.Abs("e2e-data")
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		dir     string
		offset  int
		wantErr string
	}{
		{name: "defaults", env: nil, dir: "/repo/.data", offset: 0},
		{name: "data dir made absolute", env: map[string]string{dataDirEnv: "e2e-data"}, dir: abs},
		{name: "offset", env: map[string]string{portOffsetEnv: "20000"}, dir: "/repo/.data", offset: 20000},
		{name: "largest offset", env: map[string]string{portOffsetEnv: "55000"}, dir: "/repo/.data", offset: 55000},
		{name: "offset past the last port", env: map[string]string{portOffsetEnv: "55001"}, wantErr: "TALLY_DEV_PORT_OFFSET=\"55001\": want a whole number from 0 to 55000"},
		{name: "negative offset", env: map[string]string{portOffsetEnv: "-1"}, wantErr: "want a whole number"},
		{name: "not a number", env: map[string]string{portOffsetEnv: "1e3"}, wantErr: "want a whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, offset, err := placement(func(k string) string { return tc.env[k] }, "/repo/.data")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.dir, dir)
			require.Equal(t, tc.offset, offset)
		})
	}
}

// TestRunWithAPortOffset runs a stack beside the default one: every listen and dial address,
// the checkout page, the webhook route and the console URL move by the offset, and stack.json
// says where everything answers while the stack runs.
func TestRunWithAPortOffset(t *testing.T) {
	const offset = 1000
	f := newFakeStack(t, "ledger", "payments", "gateway")
	envDir := t.TempDir()
	t.Setenv(fakeEnvDir, envDir)
	ports := map[string]int{}
	for i := range f.cfg.services {
		s := &f.cfg.services[i]
		ports[s.name] = s.port
		ports[s.name+"-metrics"] = s.metricsPort
		s.port -= offset // run adds it back
		s.metricsPort -= offset
		if s.name == "payments" {
			checkout, err := localstack.FreePort()
			require.NoError(t, err)
			ports["checkout"] = checkout
			s.extra = []int{checkout - offset}
		}
	}
	f.cfg.portOffset = offset
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, f.cfg) }()
	// stack.json is written last, once every service answers.
	var raw []byte
	require.Eventually(t, func() bool {
		var err error
		raw, err = os.ReadFile(filepath.Join(f.cfg.dataDir, stackFile))
		return err == nil
	}, time.Minute, 10*time.Millisecond, "output: %s", f.out.String())

	gateway := "http://localhost:" + strconv.Itoa(ports["gateway"])
	checkout := "http://localhost:" + strconv.Itoa(ports["checkout"])
	ledger := "localhost:" + strconv.Itoa(ports["ledger"])
	var info stackInfo
	require.NoError(t, json.Unmarshal(raw, &info))
	require.Equal(t, gateway, info.GatewayURL)
	require.Equal(t, gateway, info.ConsoleURL)
	require.Equal(t, checkout, info.CheckoutURL)
	require.Equal(t, map[string]string{"ledger": ledger, "payments": "localhost:" + strconv.Itoa(ports["payments"])}, info.GRPC)
	require.Equal(t, filepath.Join(f.cfg.dataDir, "logs"), info.LogsDir)
	require.Contains(t, f.out.String(), "REST API             "+gateway)
	require.Contains(t, f.out.String(), "test-mode checkout   "+checkout)
	metrics := map[string]string{}
	for _, name := range []string{"ledger", "payments", "gateway"} {
		metrics[name] = "http://localhost:" + strconv.Itoa(ports[name+"-metrics"]) + "/metrics"
		require.Contains(t, f.out.String(), "localhost:"+strconv.Itoa(ports[name])+"  metrics "+metrics[name], "the banner names %s's /metrics", name)
	}
	require.Equal(t, metrics, info.Metrics, "stack.json lists every /metrics")

	payments := readEnv(t, filepath.Join(envDir, "payments.env"))
	for k, want := range map[string]string{
		"TALLY_PAYMENTS_GRPC_ADDR":    ":" + strconv.Itoa(ports["payments"]),
		"TALLY_PAYMENTS_HTTP_ADDR":    ":" + strconv.Itoa(ports["checkout"]),
		"TALLY_PAYMENTS_PUBLIC_URL":   checkout,
		"TALLY_LEDGER_ADDR":           ledger,
		"TALLY_WEBHOOK_URL":           gateway + "/v1/webhooks/stripe",
		"TALLY_CONSOLE_URL":           gateway,
		"TALLY_PAYMENTS_METRICS_ADDR": ":" + strconv.Itoa(ports["payments-metrics"]),
	} {
		require.Equal(t, want, payments[k], k)
	}
	require.Equal(t, ":"+strconv.Itoa(ports["ledger-metrics"]), readEnv(t, filepath.Join(envDir, "ledger.env"))["TALLY_LEDGER_METRICS_ADDR"])
	require.Equal(t, ":"+strconv.Itoa(ports["gateway-metrics"]), readEnv(t, filepath.Join(envDir, "gateway.env"))["TALLY_GATEWAY_METRICS_ADDR"])
	require.Equal(t, ":"+strconv.Itoa(ports["gateway"]), readEnv(t, filepath.Join(envDir, "gateway.env"))["TALLY_GATEWAY_HTTP_ADDR"])
	require.Equal(t, "localhost:"+strconv.Itoa(ports["payments"]), readEnv(t, filepath.Join(envDir, "gateway.env"))["TALLY_PAYMENTS_ADDR"])

	// The file goes with the stack.
	cancel()
	require.NoError(t, <-done)
	_, err := os.Stat(filepath.Join(f.cfg.dataDir, stackFile))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// readEnv reads a fake service's environment; the last value of a variable wins, as in exec.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

// TestRunKeepsTheDevelopersConsoleURL: a console served elsewhere (a Vite dev server) stays the
// one payments and notifications link to, and stack.json says so.
func TestRunKeepsTheDevelopersConsoleURL(t *testing.T) {
	f := newFakeStack(t, "payments", "gateway")
	envDir := t.TempDir()
	t.Setenv(fakeEnvDir, envDir)
	base := f.cfg.getenv
	f.cfg.getenv = func(k string) string {
		if k == "TALLY_CONSOLE_URL" {
			return "http://localhost:5173"
		}
		return base(k)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, f.cfg) }()
	var raw []byte
	require.Eventually(t, func() bool {
		var err error
		raw, err = os.ReadFile(filepath.Join(f.cfg.dataDir, stackFile))
		return err == nil
	}, time.Minute, 10*time.Millisecond, "output: %s", f.out.String())
	var info stackInfo
	require.NoError(t, json.Unmarshal(raw, &info))
	require.Equal(t, "http://localhost:5173", info.ConsoleURL)
	require.Equal(t, "http://localhost:"+strconv.Itoa(f.cfg.services[1].port), info.GatewayURL)
	require.Equal(t, "http://localhost:5173", readEnv(t, filepath.Join(envDir, "payments.env"))["TALLY_CONSOLE_URL"])
	cancel()
	require.NoError(t, <-done)
}

// TestRunFailsLoudlyWhenAMetricsPortIsTaken: a service's metrics port is one of its ports.
func TestRunFailsLoudlyWhenAMetricsPortIsTaken(t *testing.T) {
	f := newFakeStack(t, "ledger")
	ledger := f.cfg.services[0]
	squatter, err := net.Listen("tcp", ":"+strconv.Itoa(ledger.metricsPort))
	require.NoError(t, err)
	defer squatter.Close()

	err = run(t.Context(), f.cfg)
	require.ErrorContains(t, err, fmt.Sprintf("port %d (ledger) is already in use", ledger.metricsPort))
	require.Nil(t, f.proc("ledger"), "nothing was started")
}
