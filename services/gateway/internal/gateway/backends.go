package gateway

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tallyhq/tally/pkg/loop"
)

// Backend health checks (tally_gateway_backend_up).
const (
	backendCheckEvery   = 5 * time.Second
	backendCheckTimeout = 2 * time.Second
)

// BackendHealth knows whether each backend the gateway dials serves: it asks each one's gRPC
// health service (the empty service name: the whole server) every backendCheckEvery.
type BackendHealth struct {
	conns map[string]*grpc.ClientConn
	up    *prometheus.GaugeVec
	mu    sync.Mutex
	last  map[string]bool
}

// newBackendHealth checks the backends of conns (by name), with their gauge registered on reg.
// Every backend counts as down until its first check.
func newBackendHealth(conns map[string]*grpc.ClientConn, reg prometheus.Registerer) (*BackendHealth, error) {
	b := &BackendHealth{conns: conns, last: map[string]bool{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tally_gateway_backend_up",
			Help: "Whether a backend service answers its gRPC health check as serving (1) or not (0), checked every 5s by the gateway.",
		}, []string{"backend"})}
	for name := range conns {
		b.up.WithLabelValues(name).Set(0)
		b.last[name] = false
	}
	if err := reg.Register(b.up); err != nil {
		return nil, fmt.Errorf("registering the backend gauge: %w", err)
	}
	return b, nil
}

// Status returns each backend's latest state by name (true: serving).
func (b *BackendHealth) Status() map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.last)
}

// run checks every backend now and then every backendCheckEvery until ctx is done.
func (b *BackendHealth) run(ctx context.Context) error {
	return loop.Every(ctx, "backend health", backendCheckEvery, loop.Now, loop.Passes(b.checkAll))
}

// checkAll checks the backends at once, each within backendCheckTimeout.
func (b *BackendHealth) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, name := range slices.Sorted(maps.Keys(b.conns)) {
		wg.Go(func() {
			serving := b.check(ctx, b.conns[name])
			if ctx.Err() != nil {
				return
			}
			b.mu.Lock()
			b.last[name] = serving
			b.mu.Unlock()
			v := 0.0
			if serving {
				v = 1
			}
			b.up.WithLabelValues(name).Set(v)
		})
	}
	wg.Wait()
}

func (b *BackendHealth) check(ctx context.Context, conn *grpc.ClientConn) bool {
	cctx, cancel := context.WithTimeout(ctx, backendCheckTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}
