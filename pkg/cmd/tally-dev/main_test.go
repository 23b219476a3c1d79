package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/localstack"
)

// fakeEnv makes the test binary a fake service: run under a service's name, it listens where
// tally-dev tells that service to (see TestMain).
const fakeEnv = "TALLY_DEV_FAKE_SERVICE"

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
			s.port, s.extra = port, nil
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
		<-done
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
	defer first.Unlock()

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
