package localstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRedisStopRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()

	r, err := StartRedis(ctx, RedisConfig{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	require.Equal(t, fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port()), r.URL())
	require.NoError(t, ping(ctx, r.Addr()))
	url := r.URL()

	require.NoError(t, r.Stop(ctx))
	require.Error(t, ping(ctx, r.Addr()), "redis must be down after Stop")
	require.NoError(t, r.Stop(ctx), "second Stop is a no-op")

	require.NoError(t, r.Restart(ctx))
	require.Equal(t, url, r.URL(), "Restart keeps the port")
	require.NoError(t, ping(ctx, r.Addr()))

	require.NoError(t, r.Stop(ctx))
	_, err = os.Stat(filepath.Join(dir, "redis.log"))
	require.NoError(t, err, "server output goes to Dir/redis.log")
}

func TestRedisPauseResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r, err := StartRedis(ctx, RedisConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	require.NotZero(t, r.Pid())

	require.NoError(t, r.Pause())
	// Paused: the kernel still accepts the connection, but nothing answers.
	conn, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = conn.Write([]byte("PING\r\n"))
	require.NoError(t, err)
	_, err = conn.Read(make([]byte, 16))
	var netErr net.Error
	require.ErrorAs(t, err, &netErr)
	require.True(t, netErr.Timeout(), "a paused server does not answer: %v", err)

	require.NoError(t, r.Resume())
	require.NoError(t, ping(ctx, r.Addr()))

	// Stop also ends a paused server.
	require.NoError(t, r.Pause())
	require.NoError(t, r.Stop(ctx))
	require.Zero(t, r.Pid())
	require.NoError(t, r.Pause(), "pausing a stopped server does nothing")
	require.Zero(t, r.Pid())
}

func TestStartProcess(t *testing.T) {
	port, err := FreePort()
	require.NoError(t, err)
	tests := []struct {
		name    string
		cfg     ProcessConfig
		wantErr string
	}{
		{
			name:    "missing name",
			cfg:     ProcessConfig{Path: "/bin/true"},
			wantErr: "Name is required",
		},
		{
			name:    "missing binary",
			cfg:     ProcessConfig{Name: "nope", Path: "/nonexistent/nope"},
			wantErr: "starting nope",
		},
		{
			name:    "exits before ready",
			cfg:     ProcessConfig{Name: "early", Path: "/bin/sh", Args: []string{"-c", "echo boom; exit 3"}, ReadyAddr: hostPort(port)},
			wantErr: "boom",
		},
		{
			name: "ready without address",
			cfg:  ProcessConfig{Name: "sleeper", Path: "/bin/sleep", Args: []string{"60"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			p, err := StartProcess(ctx, tt.cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NotZero(t, p.Pid())
			done := p.Done()
			require.NoError(t, p.Stop(ctx))
			require.Zero(t, p.Pid())
			select {
			case <-done:
			default:
				t.Fatal("process still running after Stop")
			}
		})
	}
}

func TestBinDir(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.work"), []byte("go 1.26\n"), 0o644))
	nested := filepath.Join(root, "pkg", "deep")
	require.NoError(t, os.MkdirAll(nested, 0o755))
	lonely := t.TempDir()

	tests := []struct {
		name string
		env  string
		wd   string
		want string
	}{
		{name: "env wins", env: "/opt/tools", wd: nested, want: "/opt/tools"},
		{name: "go.work found upward", wd: nested, want: filepath.Join(root, "bin")},
		{name: "no go.work", wd: lonely, want: filepath.Join(lonely, "bin")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(BinDirEnv, tt.env)
			t.Chdir(tt.wd)
			require.Equal(t, tt.want, BinDir())
		})
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	require.NoError(t, err)
	require.True(t, portIsFree(port))
}

// TestRedisRestoredFromAnOlderSnapshot goes back in time the way the fault suite does: SAVE, keep
// the dump, write more, kill, put the old dump back, start.
func TestRedisRestoredFromAnOlderSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r, err := StartRedis(ctx, RedisConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	do := func(words ...string) string {
		t.Helper()
		reply, err := command(ctx, r.Addr(), words...)
		require.NoError(t, err)
		return reply
	}

	require.Equal(t, "+OK", do("SET", "a", "1"))
	require.NoError(t, r.Save(ctx))
	old, err := os.ReadFile(r.DumpFile())
	require.NoError(t, err)
	require.Equal(t, "+OK", do("SET", "b", "2"))
	require.Equal(t, ":2", do("DBSIZE"))

	require.NoError(t, r.Kill(ctx))
	require.Error(t, ping(ctx, r.Addr()))
	require.NoError(t, os.WriteFile(r.DumpFile(), old, 0o644))
	require.NoError(t, r.Start(ctx))
	require.Equal(t, ":1", do("DBSIZE"), "the older snapshot is back")

	require.NoError(t, r.Pause())
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer pcancel()
	_, err = command(pctx, r.Addr(), "PING")
	require.Error(t, err, "a paused server answers nothing")
	require.NoError(t, r.Resume())
	require.NoError(t, ping(ctx, r.Addr()))

	// Without a dump the server starts empty.
	require.NoError(t, r.Kill(ctx))
	require.NoError(t, os.Remove(r.DumpFile()))
	require.NoError(t, r.Start(ctx))
	require.Equal(t, ":0", do("DBSIZE"))

	noDir, err := StartRedis(ctx, RedisConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = noDir.Stop(context.Background()) })
	require.Error(t, noDir.Save(ctx), "no snapshot into the shared temp dir")
	require.Empty(t, noDir.DumpFile())
}
