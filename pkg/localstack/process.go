package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 5 * time.Second

// Default restart backoff of a supervised process (see RestartPolicy).
const (
	defaultMinBackoff  = 250 * time.Millisecond
	defaultMaxBackoff  = 10 * time.Second
	defaultStableAfter = 30 * time.Second
)

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
	// Restart, when set, supervises the process: whenever it exits without
	// Stop having been called (a crash, a kill -9), it is started again after
	// a backoff. Nil leaves an exited process exited (see Start).
	Restart *RestartPolicy
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// RestartPolicy is how a supervised process is restarted. The zero value
// uses the defaults.
type RestartPolicy struct {
	// MinBackoff is the delay before the first restart (default 250ms). It
	// doubles with every further exit, up to MaxBackoff (default 10s), and
	// is back at MinBackoff once a run has lasted StableAfter (default 30s).
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	StableAfter time.Duration
	// OnEvent, when set, is told about every exit and restart, from the
	// supervisor's goroutine; it must not block for long.
	OnEvent func(ProcessEvent)
}

func (r RestartPolicy) withDefaults() RestartPolicy {
	if r.MinBackoff <= 0 {
		r.MinBackoff = defaultMinBackoff
	}
	if r.MaxBackoff < r.MinBackoff {
		r.MaxBackoff = max(defaultMaxBackoff, r.MinBackoff)
	}
	if r.StableAfter <= 0 {
		r.StableAfter = defaultStableAfter
	}
	return r
}

// ProcessEventKind says what happened to a supervised process.
type ProcessEventKind int

// The events of a supervised process.
const (
	// ProcessExited: the process exited on its own or was killed; it is
	// restarted after Delay.
	ProcessExited ProcessEventKind = iota + 1
	// ProcessRestarted: the process was started again and is ready.
	ProcessRestarted
	// ProcessRestartFailed: starting it again failed (Err); the next
	// attempt follows after Delay.
	ProcessRestartFailed
)

// ProcessEvent is one exit or restart of a supervised process.
type ProcessEvent struct {
	Name string
	Kind ProcessEventKind
	// Err is the exit status (ProcessExited) or the start error
	// (ProcessRestartFailed).
	Err error
	// Restarts counts the restarts so far, this one included.
	Restarts int
	// Delay is the wait before the next start attempt.
	Delay time.Duration
	// Pid is the process id of the run that exited or was started.
	Pid int
}

// String describes the event for a person watching, e.g. "ledger exited
// (signal: killed); restarting in 500ms".
func (e ProcessEvent) String() string {
	switch e.Kind {
	case ProcessExited:
		return fmt.Sprintf("%s exited (%v); restarting in %s", e.Name, exitText(e.Err), e.Delay)
	case ProcessRestarted:
		return fmt.Sprintf("%s restarted (pid %d, restart %d)", e.Name, e.Pid, e.Restarts)
	case ProcessRestartFailed:
		return fmt.Sprintf("%s failed to start again: %v; retrying in %s", e.Name, e.Err, e.Delay)
	}
	return e.Name + ": unknown event"
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Process is a child process started by StartProcess. It is killed when the
// parent process dies (Pdeathsig) and runs in its own process group, so that a
// terminal's Ctrl-C reaches only the parent, which then stops it.
//
// Besides Stop, the fault-injection suite uses Kill (SIGKILL), Pause
// (SIGSTOP) and Resume (SIGCONT); an unsupervised process that exited is
// started again with Start, a supervised one restarts by itself.
type Process struct {
	cfg    ProcessConfig
	logger *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has exited
	waitErr  error         // valid after done is closed
	tail     *tailBuffer
	started  time.Time // when cmd was started
	restarts int
	// stopSup is closed by Stop to end the supervision; supDone is closed when
	// the supervisor goroutine has returned. Both nil when unsupervised.
	stopSup chan struct{}
	supDone chan struct{}
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
	p.supervise()
	return p, nil
}

// Name returns the configured name.
func (p *Process) Name() string { return p.cfg.Name }

// Pid returns the process id of the running process, or 0 when stopped or
// exited.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is running (a paused process is
// running).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *Process) runningLocked() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Restarts returns how often the supervisor has restarted the process.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
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

// Output returns the last few kilobytes the process wrote to stdout/stderr
// in its current (or last) run.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tail == nil {
		return ""
	}
	return p.tail.String()
}

// start launches the process and waits until it is ready; a process that
// does not become ready is killed.
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
			err = fmt.Errorf("%w: %w", err, p.waitErr)
			p.mu.Unlock()
		default:
		}
		p.terminate(context.Background())
		return fmt.Errorf("starting %s: waiting for %s: %w; output:\n%s", p.cfg.Name, p.cfg.ReadyAddr, err, tail.String())
	}
	p.logger.Debug("process ready", "addr", p.cfg.ReadyAddr)
	return nil
}

// launch starts the command and a goroutine that reaps it.
func (p *Process) launch() (<-chan struct{}, *tailBuffer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
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
		// Wait has copied all output: the log file can be closed.
		if logFile != nil {
			_ = logFile.Close()
		}
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	p.cmd, p.done, p.tail, p.waitErr, p.started = cmd, done, tail, nil, time.Now()
	p.logger.Debug("process started", "pid", cmd.Process.Pid, "args", p.cfg.Args)
	return done, tail, nil
}

// waitReady waits until ReadyAddr accepts connections on a socket of this process: a port
// served by another program (while ours fails to bind it) is not ready.
func (p *Process) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	_, portStr, err := net.SplitHostPort(p.cfg.ReadyAddr)
	if err != nil {
		return fmt.Errorf("ReadyAddr %q: %w", p.cfg.ReadyAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("ReadyAddr %q: %w", p.cfg.ReadyAddr, err)
	}
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	dial := dialCheck(p.cfg.ReadyAddr)
	return poll(ctx, done, func(ctx context.Context) error {
		select {
		case <-done:
			return errors.New("exited")
		default:
		}
		if err := dial(ctx); err != nil {
			return err
		}
		if listening, ok := listensOn(pid, port); ok && !listening {
			return errNotOurs
		}
		return nil
	})
}

// Signal sends sig to the running process; it is a no-op when the process is
// not running.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", p.cfg.Name, err)
	}
	return nil
}

// Pause stops the process with SIGSTOP and waits until it is stopped: it
// keeps its sockets open but answers nothing until Resume.
func (p *Process) Pause() error {
	pid := p.Pid()
	if err := p.Signal(syscall.SIGSTOP); err != nil || pid == 0 {
		return err
	}
	// The signal is delivered asynchronously; a loaded machine may let the
	// process run on for a moment.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		state, ok := processState(pid)
		if !ok || state == 'T' || state == 't' {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pausing %s: still in state %c after SIGSTOP", p.cfg.Name, state)
		}
		<-tick.C
	}
}

// Resume continues a paused process (SIGCONT).
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }

// Kill kills the process with SIGKILL, as a crash would, and waits until it
// has exited. A supervised process is then restarted by its supervisor; an
// unsupervised one stays down until Start.
func (p *Process) Kill(ctx context.Context) error {
	p.mu.Lock()
	running, cmd, done := p.runningLocked(), p.cmd, p.done
	p.mu.Unlock()
	if !running {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s: %w", p.cfg.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("killing %s: %w", p.cfg.Name, ctx.Err())
	}
}

// Start starts an unsupervised process again after it exited (see Kill) and
// waits until it is ready.
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	supervised := p.stopSup != nil
	p.mu.Unlock()
	if supervised {
		return fmt.Errorf("starting %s: it is supervised and restarts by itself", p.cfg.Name)
	}
	return p.start(ctx)
}

// Stop ends the supervision, terminates the process (SIGTERM, then SIGKILL
// after a grace period or when ctx ends) and waits until it has exited and
// ReadyAddr is closed. Stop on a stopped process is a no-op.
func (p *Process) Stop(ctx context.Context) error {
	p.mu.Lock()
	stopSup, supDone := p.stopSup, p.supDone
	p.stopSup, p.supDone = nil, nil
	p.mu.Unlock()
	if stopSup != nil {
		close(stopSup)
		<-supDone
	}
	p.mu.Lock()
	stopped := p.cmd == nil
	p.mu.Unlock()
	if stopped {
		return nil
	}
	p.terminate(ctx)
	p.mu.Lock()
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
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

// terminate ends the current run, if any: SIGTERM (and SIGCONT, in case it
// is paused), then SIGKILL after the grace period or when ctx ends.
func (p *Process) terminate(ctx context.Context) {
	p.mu.Lock()
	running, cmd, done := p.runningLocked(), p.cmd, p.done
	p.mu.Unlock()
	if !running {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Process.Signal(syscall.SIGCONT)
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
}

// Restart starts the process again with the same configuration, stopping it
// first if it is still running. A supervised process stays supervised.
func (p *Process) Restart(ctx context.Context) error {
	if err := p.Stop(ctx); err != nil {
		return fmt.Errorf("restarting %s: %w", p.cfg.Name, err)
	}
	if err := p.start(ctx); err != nil {
		return err
	}
	p.supervise()
	return nil
}

// supervise starts the supervisor goroutine when the process has a restart
// policy.
func (p *Process) supervise() {
	if p.cfg.Restart == nil {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	p.mu.Lock()
	p.stopSup, p.supDone = stop, done
	p.mu.Unlock()
	go p.superviseLoop(p.cfg.Restart.withDefaults(), stop, done)
}

// superviseLoop restarts the process whenever its run exits, until stop is
// closed.
func (p *Process) superviseLoop(pol RestartPolicy, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := pol.MinBackoff
	for {
		p.mu.Lock()
		exited, started, pid := p.done, p.started, 0
		if p.cmd != nil {
			pid = p.cmd.Process.Pid
		}
		p.mu.Unlock()
		select {
		case <-stop:
			return
		case <-exited:
		}
		if time.Since(started) >= pol.StableAfter {
			backoff = pol.MinBackoff
		}
		p.mu.Lock()
		exitErr := p.waitErr
		n := p.restarts
		p.mu.Unlock()
		p.emit(pol, ProcessEvent{Name: p.cfg.Name, Kind: ProcessExited, Err: exitErr, Restarts: n, Delay: backoff, Pid: pid})
		for {
			t := time.NewTimer(backoff)
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, pol.MaxBackoff)
			err := p.start(ctx)
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			if err == nil {
				p.restarts++
			}
			n, pid := p.restarts, 0
			if err == nil && p.cmd != nil {
				pid = p.cmd.Process.Pid
			}
			p.mu.Unlock()
			if err == nil {
				p.emit(pol, ProcessEvent{Name: p.cfg.Name, Kind: ProcessRestarted, Restarts: n, Pid: pid})
				break
			}
			p.emit(pol, ProcessEvent{Name: p.cfg.Name, Kind: ProcessRestartFailed, Err: err, Restarts: n, Delay: backoff})
		}
	}
}

func (p *Process) emit(pol RestartPolicy, ev ProcessEvent) {
	switch ev.Kind {
	case ProcessRestarted:
		p.logger.Info("process restarted", "pid", ev.Pid, "restarts", ev.Restarts)
	case ProcessRestartFailed:
		p.logger.Warn("process restart failed", "err", ev.Err, "retry_in", ev.Delay)
	default:
		p.logger.Warn("process exited", "err", ev.Err, "restart_in", ev.Delay)
	}
	if pol.OnEvent != nil {
		pol.OnEvent(ev)
	}
}
