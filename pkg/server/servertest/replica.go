package servertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/rpcclient"
)

// ErrNotStopped is in Stop's error when the service did not return within the timeout.
var ErrNotStopped = errors.New("did not stop")

// ReplicaConfig is what StartReplica runs.
type ReplicaConfig struct {
	// Name is the service's name in errors (e.g. "ledger").
	Name string
	// Listener is where Serve serves gRPC with the health service; nil is a free port of
	// 127.0.0.1.
	Listener net.Listener
	// Serve runs the service on Listener until its context is canceled.
	Serve func(ctx context.Context, lis net.Listener) error
	// Timeout bounds the wait for health and the wait for Stop (default 30s).
	Timeout time.Duration
	// StopWithContext also stops the service when StartReplica's ctx ends; by default the
	// service runs until Stop and ctx bounds the start only.
	StopWithContext bool
}

// Replica is a service StartReplica runs until Stop.
type Replica struct {
	// Addr is the Listener's address.
	Addr    string
	name    string
	timeout time.Duration
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
	err     error
}

// pollInterval is how often StartReplica asks for health; callTimeout bounds one call.
const (
	pollInterval = 20 * time.Millisecond
	callTimeout  = time.Second
)

// StartReplica runs cfg.Serve in a goroutine and returns once the gRPC health service on the
// listener's address answers SERVING. It fails at once with the service's error when Serve
// returns first, and when ctx ends or Timeout passes; the service is stopped then.
func StartReplica(ctx context.Context, cfg ReplicaConfig) (*Replica, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Listener == nil {
		lis, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Name, err)
		}
		cfg.Listener = lis
	}
	runCtx := ctx
	if !cfg.StopWithContext {
		runCtx = context.WithoutCancel(ctx)
	}
	runCtx, cancel := context.WithCancel(runCtx)
	r := &Replica{Addr: cfg.Listener.Addr().String(), name: cfg.Name, timeout: cfg.Timeout, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- cfg.Serve(runCtx, cfg.Listener) }()
	exited, err := r.waitHealthy(ctx)
	if err != nil {
		stopErr := r.Stop()
		if exited {
			return nil, err // Stop's error is the exit's, already in err
		}
		return nil, errors.Join(err, stopErr)
	}
	return r, nil
}

// waitHealthy polls the health service until it answers SERVING; exited says Serve returned.
func (r *Replica) waitHealthy(ctx context.Context) (exited bool, _ error) {
	conn, err := grpc.NewClient(r.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false, err
	}
	defer func() { _ = conn.Close() }()
	hc := grpc_health_v1.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, callTimeout)
		resp, err := hc.Check(cctx, &grpc_health_v1.HealthCheckRequest{})
		ccancel()
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return false, nil
		}
		select {
		case serr := <-r.done:
			r.done <- serr
			if serr == nil {
				serr = errors.New("no error")
			}
			return true, fmt.Errorf("%s exited before becoming healthy: %w", r.name, serr)
		case <-ctx.Done():
			return false, fmt.Errorf("%s did not become healthy: %w", r.name, errors.Join(ctx.Err(), err))
		case <-tick.C:
		}
	}
}

// Stop cancels the service's context and waits for Serve to return (for up to Timeout); it
// returns Serve's error other than context.Canceled. Stopping twice is stopping once: later
// calls return the first answer.
func (r *Replica) Stop() error {
	r.once.Do(func() {
		r.cancel()
		t := time.NewTimer(r.timeout)
		defer t.Stop()
		select {
		case err := <-r.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				r.err = err
			}
		case <-t.C:
			r.err = fmt.Errorf("%s %w within %s", r.name, ErrNotStopped, r.timeout)
		}
	})
	return r.err
}

// StopAtCleanup calls stop when t ends and fails t with its error, naming the service what.
func StopAtCleanup(t testing.TB, what string, stop func() error) {
	t.Helper()
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("%s stopped with error: %v", what, err)
		}
	})
}

// Dial dials addr with token (none when empty), as rpcclient.Dial does; the connection closes
// when t ends.
func Dial(t testing.TB, addr, token string) *grpc.ClientConn {
	t.Helper()
	conn, err := rpcclient.Dial(addr, token)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Start is a harness's Start: it runs start (the harness's New) with a context that outlives t's
// own, fails t when the service does not start, and stops the service when t ends (StopAtCleanup,
// naming it what).
func Start[S interface{ Stop() error }](t testing.TB, what string, start func(context.Context) (S, error)) S {
	t.Helper()
	s, err := start(context.WithoutCancel(t.Context()))
	require.NoError(t, err, "%s did not start", what)
	StopAtCleanup(t, what, s.Stop)
	return s
}
