package localstack

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
)

// StripeMockConfig configures StartStripeMock.
type StripeMockConfig struct {
	// Bin is the stripe-mock executable; empty means BinDir()/stripe-mock.
	Bin string
	// HTTPPort is the plain-HTTP port; 0 picks a free one. The HTTPS
	// listener, which clients need not use, gets a free port or is disabled.
	HTTPPort int
	// LogFile receives the server output; empty keeps it only in memory.
	LogFile string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// StripeMock is a local stripe-mock server started by StartStripeMock.
type StripeMock struct {
	port int
	proc *Process
}

// StartStripeMock starts stripe-mock and waits until its HTTP port accepts
// connections. Releases without -http-addr bind all interfaces; clients
// should use URL, which points at 127.0.0.1.
func StartStripeMock(ctx context.Context, cfg StripeMockConfig) (*StripeMock, error) {
	bin := cfg.Bin
	if bin == "" {
		bin = filepath.Join(BinDir(), "stripe-mock")
	}
	if err := waitForFile(ctx, bin, binaryWait); err != nil {
		return nil, fmt.Errorf("starting stripe-mock: %w", err)
	}
	// Free ports are picked before stripe-mock binds them, so another process can take one in
	// between (its "bind: address already in use"): then it starts again on new ones.
	attempts := 1
	if cfg.HTTPPort == 0 {
		attempts = freePortAttempts
	}
	var err error
	for range attempts {
		var sm *StripeMock
		if sm, err = startStripeMockOnce(ctx, cfg, bin); err == nil || ctx.Err() != nil {
			return sm, err
		}
	}
	return nil, err
}

// freePortAttempts bounds how often a server on free ports is started again when a port was
// taken between picking and binding it.
const freePortAttempts = 3

func startStripeMockOnce(ctx context.Context, cfg StripeMockConfig, bin string) (*StripeMock, error) {
	port, err := portOrFree(cfg.HTTPPort)
	if err != nil {
		return nil, fmt.Errorf("starting stripe-mock: %w", err)
	}
	// Newer releases can bind loopback only, but then also open HTTPS (on
	// 12112 unless told otherwise); older ones have only -http-port, which
	// binds all interfaces and disables HTTPS.
	args := []string{"-http-port", strconv.Itoa(port)}
	if helpMentions(ctx, bin, "-http-addr") {
		httpsPort, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("starting stripe-mock: %w", err)
		}
		args = []string{"-http-addr", hostPort(port), "-https-addr", hostPort(httpsPort)}
	}
	proc, err := StartProcess(ctx, ProcessConfig{
		Name:      "stripe-mock",
		Path:      bin,
		Args:      args,
		ReadyAddr: hostPort(port),
		LogFile:   cfg.LogFile,
		Logger:    cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("starting stripe-mock: %w", err)
	}
	return &StripeMock{port: port, proc: proc}, nil
}

// URL returns the base URL to use as the Stripe API endpoint.
func (s *StripeMock) URL() string {
	return "http://" + hostPort(s.port)
}

// Stop stops stripe-mock and waits until its port is closed.
func (s *StripeMock) Stop(ctx context.Context) error {
	if err := s.proc.Stop(ctx); err != nil {
		return fmt.Errorf("stopping stripe-mock: %w", err)
	}
	return nil
}
