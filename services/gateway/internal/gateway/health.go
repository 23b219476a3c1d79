package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// healthCheckTimeout bounds each backend's health check of one /healthz request.
const healthCheckTimeout = 2 * time.Second

// healthReport is the body of /healthz: "ok" when every backend serves, else "unavailable" (503).
type healthReport struct {
	Status   string            `json:"status"`
	Backends map[string]string `json:"backends"`
}

// healthz asks every backend's gRPC health service (all services at once, each with its own
// deadline) and answers 200 when all of them are SERVING, 503 otherwise, with each one's status:
// SERVING, NOT_SERVING (up, not ready: its database is unreachable, or it is shutting down) or
// UNAVAILABLE (not answering).
func healthz(conns map[string]*grpc.ClientConn) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		report := checkBackends(r.Context(), conns)
		httpStatus := http.StatusOK
		if report.Status != "ok" {
			httpStatus = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(httpStatus)
		_ = json.NewEncoder(w).Encode(report)
	})
}

// checkBackends asks every backend at once.
func checkBackends(ctx context.Context, conns map[string]*grpc.ClientConn) healthReport {
	report := healthReport{Status: "ok", Backends: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, conn := range conns {
		wg.Add(1)
		go func(ctx context.Context) {
			defer wg.Done()
			st := checkHealth(ctx, conn)
			mu.Lock()
			defer mu.Unlock()
			report.Backends[name] = st
			if st != healthpb.HealthCheckResponse_SERVING.String() {
				report.Status = "unavailable"
			}
		}(ctx)
	}
	wg.Wait()
	return report
}

// checkHealth is the health status conn's server reports for itself, or UNAVAILABLE.
func checkHealth(ctx context.Context, conn *grpc.ClientConn) string {
	ctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return "UNAVAILABLE"
	}
	return resp.GetStatus().String()
}

// replayedHeader answers Idempotent-Replayed: true when the service returned the result of an
// earlier write with the same idempotency key (its response's replayed field is true).
func replayedHeader(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("replayed")
	if fd != nil && fd.Kind() == protoreflect.BoolKind && r.Get(fd).Bool() {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	return nil
}
