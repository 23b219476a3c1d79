package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 5 * time.Second

// ProcessConfig describes a long-running child process.
type ProcessConfig struct {
	// Name identifies the process in logs and errors.
	Name string
	// Path is the executable to run.
	Path string
	// Args are the command-line arguments, without the program name.
	Args []string
	// Env is appended to the environment of the current process.
	Env []string
	// ReadyAddr is the host:port that accepts TCP connections once the
	// process is ready. Empty means ready as soon as it has started.
	ReadyAddr string
	// LogFile receives the process's stdout and stderr (appended). Empty
	// keeps only the last few kilobytes in memory, for error messages.
	LogFile string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Process is a child process started by StartProcess. It is killed when the
// parent process dies (Pdeathsig) and runs in its own process group, so that a
// terminal's Ctrl-C reaches only the parent, which then stops it.
type Process struct {
	cfg    ProcessConfig
	logger *slog.Logger

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	waitErr error         // valid after done is closed
	logFile *os.File
	tail    *tailBuffer
}

// StartProcess starts the process described by cfg and waits until it is
// ready (see ProcessConfig.ReadyAddr). ctx bounds only the start-up; the
// process keeps running until Stop.
func StartProcess(ctx context.Context, cfg ProcessConfig) (*Process, error) {
	if cfg.Name == "" {
		return nil, errors.New("starting process: Name is required")
	}
	if cfg.Path == "" {
		return nil, fmt.Errorf("starting %s: Path is required", cfg.Name)
	}
	p := &Process{cfg: cfg, logger: loggerOrDiscard(cfg.Logger).With("process", cfg.Name)}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Pid returns the process id of the running process, or 0 when stopped.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Done returns a channel that is closed when the current run of the process
// exits, or nil when the process is stopped.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	return p.done
}

// Output returns the last few kilobytes the process wrote to stdout/stderr.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tail == nil {
		return ""
	}
	return p.tail.String()
}

func (p *Process) start(ctx context.Context) error {
	done, tail, err := p.launch()
	if err != nil {
		return err
	}
	if p.cfg.ReadyAddr == "" {
		return nil
	}
	if err := p.waitReady(ctx, done); err != nil {
		select {
		case <-done:
			p.mu.Lock()
			err = fmt.Errorf("%w: %v", err, p.waitErr)
			p.mu.Unlock()
		default:
		}
		_ = p.Stop(context.Background())
		return fmt.Errorf("starting %s: waiting for %s: %w; output:\n%s", p.cfg.Name, p.cfg.ReadyAddr, err, tail.String())
	}
	p.logger.Debug("process ready", "addr", p.cfg.ReadyAddr)
	return nil
}

// launch starts the command and a goroutine that reaps it.
func (p *Process) launch() (<-chan struct{}, *tailBuffer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil, nil, fmt.Errorf("starting %s: already running", p.cfg.Name)
	}

	tail := &tailBuffer{max: 8 << 10}
	var out io.Writer = tail
	var logFile *os.File
	if p.cfg.LogFile != "" {
		f, err := os.OpenFile(p.cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("starting %s: opening log file: %w", p.cfg.Name, err)
		}
		logFile = f
		out = io.MultiWriter(f, tail)
	}

	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Env = append(os.Environ(), p.cfg.Env...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			_ = logFile.Close()
		}
		return nil, nil, fmt.Errorf("starting %s: %w", p.cfg.Name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	p.cmd, p.done, p.logFile, p.tail, p.waitErr = cmd, done, logFile, tail, nil
	p.logger.Debug("process started", "pid", cmd.Process.Pid, "args", p.cfg.Args)
	return done, tail, nil
}

func (p *Process) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	return poll(ctx, done, dialCheck(p.cfg.ReadyAddr))
}

// Stop terminates the process (SIGTERM, then SIGKILL after a grace period or
// when ctx ends) and waits until it has exited and ReadyAddr is closed. Stop
// on a stopped process is a no-op.
func (p *Process) Stop(ctx context.Context) error {
	p.mu.Lock()
	cmd, done, logFile := p.cmd, p.done, p.logFile
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process handles the SIGTERM too
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		_ = cmd.Process.Kill()
		<-done
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
	}

	p.mu.Lock()
	p.cmd, p.done, p.logFile = nil, nil, nil
	p.mu.Unlock()
	if logFile != nil {
		_ = logFile.Close()
	}
	p.logger.Debug("process stopped")

	if p.cfg.ReadyAddr != "" {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := waitClosed(wctx, p.cfg.ReadyAddr); err != nil {
			return fmt.Errorf("stopping %s: %w", p.cfg.Name, err)
		}
	}
	return nil
}

// Restart starts the process again with the same configuration, stopping it
// first if it is still running.
func (p *Process) Restart(ctx context.Context) error {
	if err := p.Stop(ctx); err != nil {
		return fmt.Errorf("restarting %s: %w", p.cfg.Name, err)
	}
	return p.start(ctx)
}
