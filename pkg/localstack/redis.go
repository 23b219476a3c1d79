package localstack

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisConfig configures StartRedis.
type RedisConfig struct {
	// Dir is the server's working directory; its redis.log receives the
	// server output. Empty means the system temp directory and no log file.
	// Automatic persistence is disabled: only Save writes dump.rdb there, and
	// a start loads the dump.rdb it finds there.
	Dir string
	// Port is the TCP port; 0 picks a free one.
	Port int
	// Bind is the address the server listens on; empty is 127.0.0.1.
	Bind string
	// Bin is the redis-server executable; empty looks it up on PATH.
	Bin string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// Args are more server arguments (StartRedisCluster's cluster mode).
	Args []string
}

// Redis is a private redis-server started by StartRedis.
type Redis struct {
	host string
	port int
	dir  string // empty when RedisConfig.Dir was
	proc *Process
}

// StartRedis starts a redis-server without persistence on 127.0.0.1 and
// waits until it answers PING.
func StartRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	// A free port is picked before redis-server binds it, so another process can take it in
	// between ("bind: address already in use"): then it starts again on a new one.
	attempts := 1
	if cfg.Port == 0 {
		attempts = freePortAttempts
	}
	var err error
	for range attempts {
		var r *Redis
		if r, err = startRedisOnce(ctx, cfg); err == nil || ctx.Err() != nil {
			return r, err
		}
	}
	return nil, err
}

func startRedisOnce(ctx context.Context, cfg RedisConfig) (*Redis, error) {
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
	host := cfg.Bind
	if host == "" {
		host = "127.0.0.1"
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
		Args: append([]string{
			"--port", strconv.Itoa(port),
			"--bind", host,
			// Protected mode refuses every client but loopback ones when there is no password:
			// a server bound elsewhere (a test network's bridge) is meant for those clients.
			"--protected-mode", map[bool]string{true: "yes", false: "no"}[host == "127.0.0.1"],
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
		}, cfg.Args...),
		ReadyAddr: net.JoinHostPort(host, strconv.Itoa(port)),
		LogFile:   logFile,
		Logger:    cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("starting redis: %w", err)
	}
	r := &Redis{host: host, port: port, proc: proc}
	if cfg.Dir != "" {
		r.dir = dir
	}
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
	return net.JoinHostPort(r.host, strconv.Itoa(r.port))
}

// Port returns the server's TCP port.
func (r *Redis) Port() int {
	return r.port
}

// Pid returns the process id of the running server, or 0 when it is stopped.
func (r *Redis) Pid() int {
	return r.proc.Pid()
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

// Kill kills the server with SIGKILL (no shutdown save) and waits until it
// has exited. Start brings it back on the same port.
func (r *Redis) Kill(ctx context.Context) error {
	if err := r.proc.Kill(ctx); err != nil {
		return fmt.Errorf("killing redis: %w", err)
	}
	return nil
}

// Start starts a killed server again on the same port and waits until it
// answers PING. It loads Dir/dump.rdb when there is one.
func (r *Redis) Start(ctx context.Context) error {
	if err := r.proc.Start(ctx); err != nil {
		return fmt.Errorf("starting redis again: %w", err)
	}
	if err := r.waitPing(ctx); err != nil {
		return fmt.Errorf("starting redis again: %w", err)
	}
	return nil
}

// Pause stops the server with SIGSTOP: it keeps its port, its data and its
// connections but answers nothing, like a stalled or partitioned server, until
// Resume (it waits until the process is stopped).
func (r *Redis) Pause() error { return r.proc.Pause() }

// Resume continues a paused server.
func (r *Redis) Resume() error { return r.proc.Resume() }

// DumpFile returns the path of the snapshot Save writes and Start loads;
// empty when the server has no Dir of its own.
func (r *Redis) DumpFile() string {
	if r.dir == "" {
		return ""
	}
	return filepath.Join(r.dir, "dump.rdb")
}

// Save writes a snapshot of the data set to DumpFile (the SAVE command).
func (r *Redis) Save(ctx context.Context) error {
	if r.dir == "" {
		return fmt.Errorf("saving redis: the server has no Dir of its own")
	}
	reply, err := command(ctx, r.Addr(), "SAVE")
	if err != nil {
		return fmt.Errorf("saving redis: %w", err)
	}
	if reply != "+OK" {
		return fmt.Errorf("saving redis: unexpected reply %q", reply)
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
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	line, err := command(ctx, addr, "PING")
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("unexpected reply to PING: %q", line)
	}
	return nil
}

// commandTimeout bounds one command sent by command.
const commandTimeout = 30 * time.Second

// command sends one inline command (words without spaces) to the Redis
// server at addr and returns the first line of its reply, e.g. "+OK".
func command(ctx context.Context, addr string, words ...string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline := time.Now().Add(commandTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := conn.Write([]byte(strings.Join(words, " ") + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}
