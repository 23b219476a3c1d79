package servertest_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/server/servertest"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return lis
}

// serveHealth serves a health service that answers SERVING once the server runs, until ctx ends.
func serveHealth(ctx context.Context, lis net.Listener) error {
	srv := grpc.NewServer()
	hs := health.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, hs)
	stop := context.AfterFunc(ctx, srv.GracefulStop)
	defer stop()
	if err := srv.Serve(lis); err != nil {
		return err
	}
	return ctx.Err()
}

func TestReplicaStartsAndStopsOnce(t *testing.T) {
	r, err := servertest.StartReplica(t.Context(), servertest.ReplicaConfig{
		Name: "health", Listener: listen(t), Serve: serveHealth, Timeout: 10 * time.Second,
	})
	require.NoError(t, err)
	require.NotEmpty(t, r.Addr)
	require.NoError(t, r.Stop(), "a canceled service stops without error")
	require.NoError(t, r.Stop(), "stopping twice is stopping once")
}

func TestReplicaStopReturnsTheServiceError(t *testing.T) {
	boom := errors.New("boom")
	r, err := servertest.StartReplica(t.Context(), servertest.ReplicaConfig{
		Name: "health", Listener: listen(t), Timeout: 10 * time.Second,
		Serve: func(ctx context.Context, lis net.Listener) error {
			_ = serveHealth(ctx, lis)
			return boom
		},
	})
	require.NoError(t, err)
	require.ErrorIs(t, r.Stop(), boom)
	require.ErrorIs(t, r.Stop(), boom, "a second Stop returns the first answer")
}

func TestReplicaFailsAtOnceWhenTheServiceExits(t *testing.T) {
	boom := errors.New("no database")
	start := time.Now()
	_, err := servertest.StartReplica(t.Context(), servertest.ReplicaConfig{
		Name: "broken", Listener: listen(t), Timeout: 20 * time.Second,
		Serve: func(context.Context, net.Listener) error { return boom },
	})
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "broken exited before becoming healthy")
	require.Less(t, time.Since(start), 10*time.Second, "it did not wait for the timeout")
}

func TestReplicaDetachedFromStartContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	r, err := servertest.StartReplica(ctx, servertest.ReplicaConfig{
		Name: "health", Listener: listen(t), Timeout: 10 * time.Second,
		Serve: func(ctx context.Context, lis net.Listener) error {
			defer close(stopped)
			return serveHealth(ctx, lis)
		},
	})
	require.NoError(t, err)
	cancel()
	select {
	case <-stopped:
		t.Fatal("the service stopped with the start's context")
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, r.Stop())
	<-stopped
}

func TestReplicaListensOnAFreeLocalPortByDefault(t *testing.T) {
	r, err := servertest.StartReplica(t.Context(), servertest.ReplicaConfig{Name: "health", Serve: serveHealth, Timeout: 10 * time.Second})
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(r.Addr)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	require.NoError(t, r.Stop())
}
