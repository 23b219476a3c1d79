package localstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// listenEnv makes the test binary a tiny server: it listens on the address in the variable until
// it is killed (see TestMain).
const listenEnv = "LOCALSTACK_TEST_LISTEN"

func TestMain(m *testing.M) {
	if addr := os.Getenv(listenEnv); addr != "" {
		os.Exit(serveForever(addr))
	}
	os.Exit(m.Run())
}

func serveForever(addr string) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 3
	}
	fmt.Fprintln(os.Stdout, "listening on", addr)
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		_ = c.Close()
	}
}

// serverConfig is a process config running the test binary as a server on a free port.
func serverConfig(t *testing.T, name string) ProcessConfig {
	t.Helper()
	port, err := FreePort()
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	addr := hostPort(port)
	return ProcessConfig{Name: name, Path: self, Env: []string{listenEnv + "=" + addr}, ReadyAddr: addr,
		LogFile: filepath.Join(t.TempDir(), name+".log")}
}

// events collects the events of a supervised process.
type events struct {
	mu  sync.Mutex
	got []ProcessEvent
}

func (e *events) add(ev ProcessEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) kinds() []ProcessEventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ProcessEventKind
	for _, ev := range e.got {
		out = append(out, ev.Kind)
	}
	return out
}

func (e *events) last() ProcessEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got[len(e.got)-1]
}

func TestSupervisedProcessRestartsAfterKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var evs events
	cfg := serverConfig(t, "server")
	cfg.Restart = &RestartPolicy{MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, OnEvent: evs.add}
	p, err := StartProcess(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })

	for i := 1; i <= 3; i++ {
		pid := p.Pid()
		require.NotZero(t, pid)
		require.NoError(t, p.Kill(ctx))
		require.Eventually(t, func() bool { return p.Restarts() == i && p.Running() }, 30*time.Second, 5*time.Millisecond,
			"restart %d", i)
		require.NotEqual(t, pid, p.Pid(), "a new run")
		require.NoError(t, dialCheck(cfg.ReadyAddr)(ctx), "ready again")
	}
	require.Eventually(t, func() bool { return len(evs.kinds()) == 6 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []ProcessEventKind{ProcessExited, ProcessRestarted, ProcessExited, ProcessRestarted, ProcessExited, ProcessRestarted},
		evs.kinds())
	evs.mu.Lock()
	exits := []time.Duration{evs.got[0].Delay, evs.got[2].Delay, evs.got[4].Delay}
	require.Contains(t, evs.got[0].String(), "server exited (signal: killed); restarting in 20ms")
	evs.mu.Unlock()
	require.Equal(t, []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}, exits, "backoff doubles up to the max")
	require.Contains(t, evs.last().String(), "server restarted (pid ")

	require.Error(t, p.Start(ctx), "a supervised process restarts by itself")
	require.NoError(t, p.Stop(ctx))
	require.False(t, p.Running())
	require.Equal(t, 3, p.Restarts(), "no restart after Stop")
	require.Error(t, dialCheck(cfg.ReadyAddr)(ctx))
}

func TestSupervisedProcessRetriesAFailingStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var evs events
	cfg := serverConfig(t, "server")
	cfg.Restart = &RestartPolicy{MinBackoff: 300 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, OnEvent: evs.add}
	p, err := StartProcess(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })

	// Another program takes the port while the server is down: our restarts fail (they exit at
	// once) and are retried, and never count as ready although the port accepts connections.
	require.NoError(t, p.Kill(ctx))
	squatter, err := net.Listen("tcp", cfg.ReadyAddr)
	require.NoError(t, err, "taken within the first backoff")
	go func() {
		for {
			c, err := squatter.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	require.Eventually(t, func() bool {
		for _, k := range evs.kinds() {
			if k == ProcessRestartFailed {
				return true
			}
		}
		return false
	}, 30*time.Second, 5*time.Millisecond)
	require.Zero(t, p.Restarts())
	require.NoError(t, squatter.Close())
	require.Eventually(t, func() bool { return p.Restarts() == 1 && p.Running() }, 30*time.Second, 5*time.Millisecond)
}

func TestProcessKillStartPauseResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := serverConfig(t, "server")
	p, err := StartProcess(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })

	require.NoError(t, p.Pause())
	state, ok := processState(p.Pid())
	require.True(t, ok)
	require.Equal(t, byte('T'), state, "stopped by SIGSTOP when Pause returns")
	require.NoError(t, p.Resume())
	require.Eventually(t, func() bool { state, _ := processState(p.Pid()); return state != 'T' }, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, p.Kill(ctx))
	require.False(t, p.Running())
	require.Zero(t, p.Pid())
	require.Error(t, dialCheck(cfg.ReadyAddr)(ctx), "an unsupervised process stays down")
	require.NoError(t, p.Start(ctx))
	require.True(t, p.Running())
	require.NoError(t, dialCheck(cfg.ReadyAddr)(ctx))
	require.Error(t, p.Start(ctx), "already running")

	// Stop reaches a paused process too.
	require.NoError(t, p.Pause())
	require.NoError(t, p.Stop(ctx))
	require.False(t, p.Running())
	data, err := os.ReadFile(cfg.LogFile)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(data), "listening on"), "both runs append to the log file")
}

func TestProcessStartFailsWhenThePortBelongsToAnother(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := serverConfig(t, "server")
	squatter, err := net.Listen("tcp", cfg.ReadyAddr)
	require.NoError(t, err)
	defer squatter.Close()
	go func() {
		for {
			c, err := squatter.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	// The port answers, but not from our process, which exits with "address already in use".
	_, err = StartProcess(ctx, cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), "address already in use")
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "tally.lock")
	first, err := Lock(path)
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%d\n", os.Getpid()), string(data))

	_, err = Lock(path)
	require.ErrorIs(t, err, ErrLocked)
	var locked *LockedError
	require.True(t, errors.As(err, &locked))
	require.Equal(t, os.Getpid(), locked.Pid)
	require.Contains(t, err.Error(), fmt.Sprintf("held by process %d", os.Getpid()))

	require.NoError(t, first.Unlock())
	second, err := Lock(path)
	require.NoError(t, err, "free again after Unlock")
	require.NoError(t, second.Unlock())
}
