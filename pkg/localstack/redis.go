package localstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RedisConfig configures StartRedis.
type RedisConfig struct {
	// Dir is the server's working directory; its redis.log receives the
	// server output. Empty means the system temp directory and no log file.
	// Persistence is disabled, so nothing else is written there.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Bin is the redis-server executable; empty looks it up on PATH.
	Bin string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Redis is a private redis-server started by StartRedis.
type Redis struct {
	port int
	proc *Process
}

// StartRedis starts a redis-server without persistence on 127.0.0.1 and
// waits until it answers PING.
func StartRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	bin := cfg.Bin
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("starting redis: %w", err)
		}
	}
	port, err := portOrFree(cfg.Port)
	if err != nil {
		return nil, fmt.Errorf("starting redis: %w", err)
	}
	dir, logFile := cfg.Dir, ""
	if dir == "" {
		dir = os.TempDir()
	} else {
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, fmt.Errorf("starting redis: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("starting redis: creating dir: %w", err)
		}
		logFile = filepath.Join(dir, "redis.log")
	}
	proc, err := StartProcess(ctx, ProcessConfig{
		Name: "redis",
		Path: bin,
		Args: []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
		},
		ReadyAddr: hostPort(port),
		LogFile:   logFile,
		Logger:    cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("starting redis: %w", err)
	}
	r := &Redis{port: port, proc: proc}
	if err := r.waitPing(ctx); err != nil {
		_ = proc.Stop(context.Background())
		return nil, fmt.Errorf("starting redis: %w", err)
	}
	return r, nil
}

// URL returns the redis:// URL of database 0.
func (r *Redis) URL() string {
	return "redis://" + r.Addr() + "/0"
}

// Addr returns the server's host:port.
func (r *Redis) Addr() string {
	return hostPort(r.port)
}

// Port returns the server's TCP port.
func (r *Redis) Port() int {
	return r.port
}

// Pid returns the process id of the running server, or 0 when it is stopped.
func (r *Redis) Pid() int {
	return r.proc.Pid()
}

// Pause stops the server with SIGSTOP: it keeps its port and its data but answers nothing, like
// a stalled or partitioned server, until Resume.
func (r *Redis) Pause() error {
	return r.signal(syscall.SIGSTOP)
}

// Resume continues a server paused by Pause (SIGCONT).
func (r *Redis) Resume() error {
	return r.signal(syscall.SIGCONT)
}

func (r *Redis) signal(sig syscall.Signal) error {
	pid := r.proc.Pid()
	if pid == 0 {
		return errors.New("redis is not running")
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signalling redis (%s): %w", sig, err)
	}
	return nil
}

// Stop kills the server and waits until its port is closed. It is a no-op
// when the server is already stopped.
func (r *Redis) Stop(ctx context.Context) error {
	if err := r.proc.Stop(ctx); err != nil {
		return fmt.Errorf("stopping redis: %w", err)
	}
	return nil
}

// Restart starts the server again on the same port (with an empty data set),
// stopping it first if needed. Tests use Stop then Restart to simulate an
// outage.
func (r *Redis) Restart(ctx context.Context) error {
	if err := r.proc.Restart(ctx); err != nil {
		return fmt.Errorf("restarting redis: %w", err)
	}
	if err := r.waitPing(ctx); err != nil {
		return fmt.Errorf("restarting redis: %w", err)
	}
	return nil
}

// waitPing waits until the server answers PING with PONG.
func (r *Redis) waitPing(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := poll(ctx, r.proc.Done(), func(ctx context.Context) error { return ping(ctx, r.Addr()) }); err != nil {
		return fmt.Errorf("waiting for PONG: %w", err)
	}
	return nil
}

// ping sends an inline PING command to addr and expects +PONG.
func ping(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("unexpected reply to PING: %q", line)
	}
	return nil
}
