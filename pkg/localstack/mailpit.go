package localstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// binaryWait is how long StartMailpit and StartStripeMock wait for a missing
// binary to appear (it may still be being installed).
const binaryWait = 10 * time.Second

// MailpitConfig configures StartMailpit.
type MailpitConfig struct {
	// Bin is the mailpit executable; empty means BinDir()/mailpit.
	Bin string
	// SMTPPort is the SMTP port on 127.0.0.1; 0 picks a free one.
	SMTPPort int
	// HTTPPort is the web UI and API port on 127.0.0.1; 0 picks a free one.
	HTTPPort int
	// Dir holds mailpit.db and mailpit.log; empty keeps messages in a
	// temporary database and logs only in memory.
	Dir string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Mailpit is a local SMTP sink with an HTTP API, started by StartMailpit.
type Mailpit struct {
	smtpPort int
	httpPort int
	proc     *Process
}

// StartMailpit starts mailpit accepting any SMTP credentials over plain SMTP
// and waits until both its SMTP and HTTP ports accept connections.
func StartMailpit(ctx context.Context, cfg MailpitConfig) (*Mailpit, error) {
	bin := cfg.Bin
	if bin == "" {
		bin = filepath.Join(BinDir(), "mailpit")
	}
	if err := waitForFile(ctx, bin, binaryWait); err != nil {
		return nil, fmt.Errorf("starting mailpit: %w", err)
	}
	smtpPort, err := portOrFree(cfg.SMTPPort)
	if err != nil {
		return nil, fmt.Errorf("starting mailpit: %w", err)
	}
	httpPort, err := portOrFree(cfg.HTTPPort)
	if err != nil {
		return nil, fmt.Errorf("starting mailpit: %w", err)
	}
	if httpPort == smtpPort {
		return nil, fmt.Errorf("starting mailpit: SMTP and HTTP ports are both %d", smtpPort)
	}
	args := []string{
		"--smtp", hostPort(smtpPort),
		"--listen", hostPort(httpPort),
		"--smtp-auth-accept-any",
		"--smtp-auth-allow-insecure",
	}
	if helpMentions(ctx, bin, "--disable-version-check") {
		args = append(args, "--disable-version-check")
	}
	logFile := ""
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("starting mailpit: creating dir: %w", err)
		}
		args = append(args, "--database", filepath.Join(cfg.Dir, "mailpit.db"))
		logFile = filepath.Join(cfg.Dir, "mailpit.log")
	}
	proc, err := StartProcess(ctx, ProcessConfig{
		Name:      "mailpit",
		Path:      bin,
		Args:      args,
		ReadyAddr: hostPort(httpPort),
		LogFile:   logFile,
		Logger:    cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("starting mailpit: %w", err)
	}
	wctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := poll(wctx, proc.Done(), dialCheck(hostPort(smtpPort))); err != nil {
		_ = proc.Stop(context.Background())
		return nil, fmt.Errorf("starting mailpit: waiting for SMTP: %w", err)
	}
	return &Mailpit{smtpPort: smtpPort, httpPort: httpPort, proc: proc}, nil
}

// helpMentions reports whether bin's --help output mentions flag, so that
// options missing from older releases are only passed when supported.
func helpMentions(ctx context.Context, bin, flag string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	return strings.Contains(string(out), flag)
}

// SMTPAddr returns the SMTP server's host:port.
func (m *Mailpit) SMTPAddr() string {
	return hostPort(m.smtpPort)
}

// HTTPURL returns the base URL of the web UI and API, without a trailing
// slash.
func (m *Mailpit) HTTPURL() string {
	return "http://" + hostPort(m.httpPort)
}

// Stop stops mailpit and waits until its HTTP port is closed.
func (m *Mailpit) Stop(ctx context.Context) error {
	if err := m.proc.Stop(ctx); err != nil {
		return fmt.Errorf("stopping mailpit: %w", err)
	}
	return nil
}

// Pause stops mailpit with SIGSTOP: SMTP clients connect but get no answer
// until Resume (a stalled mail server).
func (m *Mailpit) Pause() error { return m.proc.Pause() }

// Resume continues a paused mailpit.
func (m *Mailpit) Resume() error { return m.proc.Resume() }
