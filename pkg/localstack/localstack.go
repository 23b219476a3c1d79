// Package localstack starts private local servers (PostgreSQL, Redis, Mailpit,
// stripe-mock and arbitrary tools) as child processes of the calling program.
//
// It is shared by the development stack (make run), the benchmarks and the
// test helpers in package testenv. Every server listens on 127.0.0.1 only and
// is stopped explicitly by its Stop method; the servers started through
// StartProcess also die with their parent process.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// BinDirEnv is the environment variable that overrides BinDir.
const BinDirEnv = "TALLY_BIN_DIR"

// pollInterval is how often readiness checks are retried.
const pollInterval = 50 * time.Millisecond

// defaultReadyTimeout bounds how long a server may take to become ready when
// the caller's context has no earlier deadline.
const defaultReadyTimeout = 60 * time.Second

// FreePort returns a TCP port that was free on every interface when it was checked. It is
// picked below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port the kernel
// hands out itself could be given, between the check and the server's bind, to any process's
// outgoing connection as its local port (seen as "bind: address already in use" in CI); ports
// below that range only ever go to a process that binds them by number. When the range leaves
// no room below it, the kernel picks.
func FreePort() (int, error) {
	lo, hi := belowEphemeralRange()
	for range 64 {
		if hi <= lo {
			break
		}
		port := lo + rand.IntN(hi-lo) //nolint:gosec // spreading test ports, not a secret
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue // in use: try another
		}
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("releasing free port %d: %w", port, err)
		}
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("releasing free port %d: %w", port, err)
	}
	return port, nil
}

// belowEphemeralRange returns the ports [lo, hi) FreePort picks from: from 20000 up to the
// kernel's ephemeral range (or none when it cannot be read or starts lower).
func belowEphemeralRange() (lo, hi int) {
	const floor = 20000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil || first <= floor {
		return 0, 0
	}
	return floor, first
}

// BinDir returns the directory holding the project's tool binaries (mailpit,
// stripe-mock, ...). It is $TALLY_BIN_DIR when set, else the bin directory next
// to the go.work file found by walking up from the working directory, else
// bin under the working directory.
func BinDir() string {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		return "bin"
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(dir, "bin")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Join(wd, "bin")
		}
		dir = parent
	}
}

// portOrFree returns port, or a free port when port is 0.
func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	return FreePort()
}

// loggerOrDiscard returns l, or a logger that drops everything when l is nil.
func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// hostPort formats a loopback address for port.
func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// portIsFree reports whether 127.0.0.1:port can be listened on.
func portIsFree(port int) bool {
	l, err := net.Listen("tcp", hostPort(port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// withDefaultTimeout returns ctx bounded by defaultReadyTimeout unless it
// already has a deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultReadyTimeout)
}

// poll calls check every pollInterval until it returns nil, ctx ends or stop
// is closed. It returns the last error of check when it gives up.
func poll(ctx context.Context, stop <-chan struct{}, check func(context.Context) error) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-stop:
			return fmt.Errorf("process exited (last error: %w)", err)
		case <-t.C:
		}
	}
}

// dialCheck returns a check that succeeds once addr accepts TCP connections.
func dialCheck(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

// waitClosed waits until addr refuses TCP connections.
func waitClosed(ctx context.Context, addr string) error {
	return poll(ctx, nil, func(ctx context.Context) error {
		if dialCheck(addr)(ctx) == nil {
			return fmt.Errorf("%s still accepts connections", addr)
		}
		return nil
	})
}

// waitForFile waits up to timeout for path to exist, so that a binary being
// installed concurrently (for example by make tools) can be picked up.
func waitForFile(ctx context.Context, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := poll(ctx, nil, func(context.Context) error {
		_, err := os.Stat(path)
		return err
	})
	if err != nil {
		return fmt.Errorf("binary %s not found (install the tool binaries or set %s): %w", path, BinDirEnv, err)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

var _ io.Writer = (*tailBuffer)(nil)

// Write appends p, dropping the oldest bytes beyond the limit.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns the retained output.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// fileTail returns up to max trailing bytes of the file at path, or "".
func fileTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return ""
	}
	off := info.Size() - max
	if off < 0 {
		off = 0
	}
	data, err := io.ReadAll(io.NewSectionReader(f, off, max))
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return string(data)
}
