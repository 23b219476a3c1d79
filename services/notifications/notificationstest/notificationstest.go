// Package notificationstest starts a real notifications replica (PostgreSQL, gRPC on 127.0.0.1,
// a ledger to follow, optionally an SMTP server) for tests and benchmarks.
package notificationstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/health/grpc_health_v1"

	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/notifications/internal/sender"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

// ConsoleURL is the console base URL of the emails' links unless Options.ConsoleURL is set.
const ConsoleURL = "https://app.tally.test"

// Options tune a test notifications replica.
type Options struct {
	// DatabaseURL is the database of the notifications schema (required); replicas sharing it
	// share their state, and sharing the ledger's lets a test read both.
	DatabaseURL string
	// LedgerAddr is the gRPC address of the ledger whose events the replica follows (required).
	LedgerAddr string
	// Secret verifies tokens and signs the replica's own calls to the ledger (required).
	Secret string
	// SMTPAddr is the host:port of a plain SMTP server (mailpit); empty runs no sender.
	SMTPAddr string
	// ConsoleURL is the console base URL of the emails' links (default ConsoleURL).
	ConsoleURL string
	// Now is the business clock (nil: time.Now), e.g. a clock.Manual: alert and notice times and
	// which credits expire soon. Email claims and retries stay on real time.
	Now func() time.Time
	// Logger receives the replica's logs (default: discarded).
	Logger *slog.Logger
	// Configure changes the configuration last, e.g. SendWorkers or Replica.
	Configure func(*service.Config)
}

// Config returns the configuration a replica starts with: opts over fast test intervals.
func Config(opts Options) (service.Config, error) {
	if opts.DatabaseURL == "" || opts.LedgerAddr == "" || opts.Secret == "" {
		return service.Config{}, errors.New("notificationstest: DatabaseURL, LedgerAddr and Secret are required")
	}
	if opts.ConsoleURL == "" {
		opts.ConsoleURL = ConsoleURL
	}
	cfg := service.Config{
		DatabaseURL: opts.DatabaseURL,
		Auth:        server.AuthConfig{JWTSecret: opts.Secret},
		LedgerAddr:  opts.LedgerAddr,
		ConsoleURL:  opts.ConsoleURL,
		SMTP: sender.SMTPConfig{
			Host: "127.0.0.1", Port: 25, TLS: sender.TLSNone, From: "Tally <notifications@tally.test>", Timeout: 5 * time.Second,
		},
		PollInterval:     50 * time.Millisecond,
		RetryBase:        100 * time.Millisecond,
		RetryMax:         time.Second,
		MaxAttempts:      100,
		LeaseInterval:    200 * time.Millisecond,
		EventBatch:       500,
		ReminderInterval: 100 * time.Millisecond,
		ExpiryNotice:     7 * 24 * time.Hour,
		DBMaxConns:       10,
		Now:              opts.Now,
	}
	if opts.SMTPAddr != "" {
		host, port, err := net.SplitHostPort(opts.SMTPAddr)
		if err != nil {
			return service.Config{}, fmt.Errorf("notificationstest: SMTPAddr: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return service.Config{}, fmt.Errorf("notificationstest: SMTPAddr port: %w", err)
		}
		cfg.SMTP.Host, cfg.SMTP.Port, cfg.SendWorkers = host, p, 2
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	return cfg, nil
}

// Notifications is a running notifications replica.
type Notifications struct {
	Addr        string
	DatabaseURL string
	stop        context.CancelFunc
	done        chan error
	once        sync.Once
	err         error
}

// New starts a replica and waits until it serves; Stop ends it. ctx bounds the start only.
func New(ctx context.Context, opts Options) (*Notifications, error) {
	cfg, err := Config(opts)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Notifications{Addr: lis.Addr().String(), DatabaseURL: cfg.DatabaseURL, stop: cancel, done: make(chan error, 1)}
	go func() { n.done <- service.Run(runCtx, cfg, lis, logger.With("replica", n.Addr)) }()
	if err := n.waitServing(ctx); err != nil {
		_ = n.Stop()
		return nil, err
	}
	return n, nil
}

// Start starts a replica for t and stops it when t ends.
func Start(t testing.TB, opts Options) *Notifications {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	n, err := New(ctx, opts)
	require.NoError(t, err, "notifications replica did not start")
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("notifications replica stopped with error: %v", err)
		}
	})
	return n
}

// waitServing polls the health service until it reports SERVING, the replica exits or ctx ends.
func (n *Notifications) waitServing(ctx context.Context) error {
	conn, err := rpcclient.Dial(n.Addr, "")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	hc := grpc_health_v1.NewHealthClient(conn)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case err := <-n.done:
			n.done <- err
			return fmt.Errorf("notifications replica exited while starting: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("notifications replica did not become healthy: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop shuts the replica down gracefully and waits for it (once; later calls return the same
// result).
func (n *Notifications) Stop() error {
	n.once.Do(func() {
		n.stop()
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case err := <-n.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				n.err = err
			}
		case <-t.C:
			n.err = errors.New("notifications replica did not stop within 30s")
		}
	})
	return n.err
}

// Client returns a NotificationsService client calling with token, closed when t ends.
func (n *Notifications) Client(t testing.TB, token string) notificationsv1.NotificationsServiceClient {
	t.Helper()
	conn, err := rpcclient.Dial(n.Addr, token)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return notificationsv1.NewNotificationsServiceClient(conn)
}
