package rpcclient_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/rpcclient"
)

// replica is a gRPC server on loopback answering grpc.health.v1 and counting the calls it serves.
type replica struct {
	addr  string
	calls atomic.Int64
	srv   *grpc.Server
}

func startReplica(t *testing.T) *replica {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &replica{addr: lis.Addr().String()}
	r.srv = grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		r.calls.Add(1)
		return h(ctx, req)
	}))
	grpc_health_v1.RegisterHealthServer(r.srv, health.NewServer())
	go func() { _ = r.srv.Serve(lis) }()
	t.Cleanup(r.srv.Stop)
	return r
}

// TestDialBalancesAcrossReplicas: one connection to two replicas (a static list, with and without
// its scheme) sends calls to both. When one stops gracefully (a pod terminated: GOAWAY first),
// every further call succeeds on the other; when one stops abruptly (a host lost), the calls in
// flight on its connection may fail, and then every further call succeeds on the other.
func TestDialBalancesAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, form string
		graceful   bool
	}{
		{"static list, graceful stop", "static:///%s,%s", true},
		{"bare list, graceful stop", "%s,%s", true},
		{"static list, abrupt stop", "static:///%s,%s", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := startReplica(t), startReplica(t)
			target := strings.Replace(strings.Replace(tc.form, "%s", a.addr, 1), "%s", b.addr, 1)
			conn, err := rpcclient.Dial(target, "")
			require.NoError(t, err)
			t.Cleanup(func() { _ = conn.Close() })
			client := grpc_health_v1.NewHealthClient(conn)
			check := func() error {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				_, err := client.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
				return err
			}
			// round_robin picks among the connected replicas: both take calls once both connected.
			require.Eventually(t, func() bool {
				require.NoError(t, check())
				return a.calls.Load() > 0 && b.calls.Load() > 0
			}, 10*time.Second, time.Millisecond, "calls reached a %d times and b %d times", a.calls.Load(), b.calls.Load())
			beforeA, beforeB := a.calls.Load(), b.calls.Load()
			for range 20 {
				require.NoError(t, check())
			}
			require.InDelta(t, 10, a.calls.Load()-beforeA, 1, "round-robin: a takes half of 20 calls")
			require.InDelta(t, 10, b.calls.Load()-beforeB, 1, "round-robin: b takes half of 20 calls")

			if tc.graceful {
				b.srv.GracefulStop()
			} else {
				b.srv.Stop()
				// One success may be a's turn while b is still picked; two in a row under
				// round-robin over {a, b} mean b left the picker.
				require.Eventually(t, func() bool {
					for range 2 {
						if check() != nil {
							return false
						}
					}
					return true
				}, 10*time.Second, time.Millisecond, "calls succeed again once the connection to b is gone")
			}
			served := a.calls.Load()
			for i := range 50 {
				require.NoError(t, check(), "call %d after b stopped", i)
			}
			require.Equal(t, served+50, a.calls.Load(), "a served every call after b stopped")
		})
	}
}

// TestDialDNSTarget: dns:///host:port (a headless Service's name) resolves and serves.
func TestDialDNSTarget(t *testing.T) {
	t.Parallel()
	r := startReplica(t)
	_, port, err := net.SplitHostPort(r.addr)
	require.NoError(t, err)
	conn, err := rpcclient.Dial("dns:///127.0.0.1:"+port, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(1), r.calls.Load())
}

// TestDialRefusesAnEmptyList: static:/// with no address fails the first call, naming the target.
func TestDialRefusesAnEmptyList(t *testing.T) {
	t.Parallel()
	conn, err := rpcclient.Dial("static:///,", "")
	require.NoError(t, err, "grpc.NewClient resolves lazily")
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	require.ErrorContains(t, err, "lists no address")
}
