package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type metrics struct {
	handled *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, service string) *metrics {
	m := &metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "grpc_server_handled_total",
			Help:        "RPCs completed on the server, by method and status code.",
			ConstLabels: prometheus.Labels{"service": service},
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "grpc_server_handling_seconds",
			Help:        "Latency of RPCs on the server, by method.",
			ConstLabels: prometheus.Labels{"service": service},
			Buckets:     []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
		}, []string{"method"}),
	}
	reg.MustRegister(m.handled, m.latency)
	return m
}

// observe counts a finished call. It does not log: the error interceptor logs each failed call
// once (errors.go), and the recover interceptor a panic.
func (m *metrics) observe(method string, start time.Time, err error) {
	m.handled.WithLabelValues(method, status.Code(err).String()).Inc()
	m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (m *metrics) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observe(info.FullMethod, start, err)
		return resp, err
	}
}

func (m *metrics) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observe(info.FullMethod, start, err)
		return err
	}
}

// recoverUnary answers a panicking unary call Internal, logging the panic once (it runs
// inside requestIDUnary, so both carry the request id).
func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.Error("panic in rpc", "method", info.FullMethod, "request_id", RequestID(ctx), "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, internalMessage(ctx))
			}
		}()
		return handler(ctx, req)
	}
}

// recoverStream answers a panicking streaming call Internal, logging the panic once.
func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				ctx := ss.Context()
				logger.Error("panic in rpc", "method", info.FullMethod, "request_id", RequestID(ctx), "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, internalMessage(ctx))
			}
		}()
		return handler(srv, ss)
	}
}
