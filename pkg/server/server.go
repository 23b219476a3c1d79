// Package server bootstraps a tally gRPC server: authentication, metrics, panic recovery, health,
// reflection, graceful shutdown and the Prometheus endpoint. Services register their handlers on
// GRPC() and call Serve.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/telemetry"
)

// readinessInterval is how often a server checks whether it is ready.
const readinessInterval = 250 * time.Millisecond

// Config configures a Server.
type Config struct {
	// Name of the service, used in logs and metrics.
	Name   string
	Logger *slog.Logger
	// Auth verifies callers and tells whether the service is ready (its JWKS keys and its own
	// identity); or set Verifier alone.
	Auth     *Auth
	Verifier auth.Verifier
	Policy   auth.Policy
	// Errors maps the errors handlers return to statuses (first match wins), before
	// CommonErrors; nil maps with CommonErrors alone. Statuses a handler makes itself pass
	// unchanged either way. See ErrorTable.Status.
	Errors ErrorTable
	// ShutdownTimeout bounds the graceful stop; in-flight calls past it are cut. Default 10s.
	ShutdownTimeout time.Duration
	// Telemetry traces every call (a span per call, child of the caller's traceparent); nil
	// traces nothing. The caller flushes it (Telemetry.Shutdown) after Serve returns.
	Telemetry *telemetry.Telemetry
	// AccessLog thins the access log of the service's hottest methods; the zero value logs
	// every call.
	AccessLog AccessLogSampling
}

// minStreamWorkers is the least number of goroutines a server keeps to run calls on.
const minStreamWorkers = 256

// streamWorkers is how many goroutines a server keeps to run calls on. A reused worker keeps its
// grown stack; a call finding every worker busy runs on a new goroutine, whose stack is grown
// (copied) again on every call: with 8 per core, 64 callers' Authorize calls spent a third of
// the handler's CPU in runtime.copystack. Calls in flight, not cores, set how many are busy (a
// debit waits for its group commit), hence the floor; an idle worker costs its stack, a few KiB.
func streamWorkers() uint32 {
	return uint32(max(minStreamWorkers, 16*runtime.GOMAXPROCS(0))) //nolint:gosec // GOMAXPROCS is small and positive
}

// Server is a gRPC server with the platform's interceptors, health and reflection.
type Server struct {
	name            string
	logger          *slog.Logger
	grpc            *grpc.Server
	health          *health.Server
	registry        *prometheus.Registry
	shutdownTimeout time.Duration
	// readiness returns why the service cannot serve yet; ready is its latest outcome.
	readiness func() error
	ready     atomic.Bool
	// streams ends the streams in flight when Serve starts stopping (stopping.go).
	streams *streamStop
}

// New builds a Server. Register services on GRPC() before calling Serve.
func New(cfg Config) (*Server, error) {
	readiness := func() error { return nil }
	if cfg.Auth != nil {
		cfg.Verifier, readiness = cfg.Auth.Verifier(), cfg.Auth.Ready
	} else if r, ok := cfg.Verifier.(interface{ Ready() error }); ok {
		readiness = r.Ready
	}
	if cfg.Name == "" || cfg.Logger == nil || cfg.Verifier == nil || cfg.Policy == nil {
		return nil, errors.New("server: name, logger, verifier (or auth) and policy are required")
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Auth != nil {
		reg.MustRegister(cfg.Auth.collectors()...)
	}
	m := newMetrics(reg, cfg.Name)
	errs := errorMapper{table: cfg.Errors, logger: cfg.Logger}
	access := accessLog{logger: cfg.Logger, sampler: newAccessSampler(cfg.AccessLog)}
	verifier := recordingVerifier{Verifier: cfg.Verifier} // tells the access log the caller's kind
	s := &Server{
		name:            cfg.Name,
		logger:          cfg.Logger,
		registry:        reg,
		health:          health.NewServer(),
		shutdownTimeout: cfg.ShutdownTimeout,
		readiness:       readiness,
		streams:         newStreamStop(),
	}
	s.grpc = grpc.NewServer(append(append(grpcLimitOptions(), cfg.Telemetry.GRPCServerOptions()...),
		grpc.NumStreamWorkers(streamWorkers()),
		grpc.ForceServerCodecV2(newRequestCodec()), // see requestcheck.go
		grpc.ChainUnaryInterceptor(
			requestIDUnary, // first: a panic's answer and log line carry the id too
			access.unary,   // outside recover and errors: it logs the code the caller gets
			recoverUnary(cfg.Logger),
			m.unary(),
			errs.unary,
			checkRequestsUnary(),
			s.readyUnary,
			auth.UnaryServerInterceptor(verifier, cfg.Policy),
		),
		grpc.ChainStreamInterceptor(
			requestIDStream,
			access.stream,
			recoverStream(cfg.Logger),
			m.stream(),
			errs.stream,
			checkRequestsStream(),
			s.readyStream,
			auth.StreamServerInterceptor(verifier, cfg.Policy),
			s.streams.interceptor,
		),
	)...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// GRPC returns the underlying server for registering services.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Registry returns the Prometheus registry of this server, for service-specific metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Serve serves lis until ctx is done, then stops gracefully: health goes NOT_SERVING, in-flight
// calls finish within the shutdown timeout, and streams end at once with ErrStopping (their
// handlers' contexts are done: stopping.go). Health reports SERVING for every registered service
// while the service is ready (see Config.Auth) and NOT_SERVING otherwise; calls other than
// health and reflection get Unavailable meanwhile.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.checkReadiness()
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	s.logger.Info("grpc server listening", "service", s.name, "addr", lis.Addr().String())
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { s.watchReadiness(watchCtx); close(watched) }()
	select {
	case err := <-errc:
		stopWatch()
		<-watched
		return fmt.Errorf("serving grpc: %w", err)
	case <-ctx.Done():
	}
	stopWatch()
	<-watched
	s.health.Shutdown()
	s.streams.end()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.shutdownTimeout):
		s.logger.Warn("graceful stop timed out, closing remaining calls", "service", s.name)
		s.grpc.Stop()
	}
	s.logger.Info("grpc server stopped", "service", s.name)
	return nil
}

// watchReadiness checks readiness every readinessInterval until ctx is done.
func (s *Server) watchReadiness(ctx context.Context) {
	t := time.NewTicker(readinessInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkReadiness()
		}
	}
}

// checkReadiness updates the health status and the call gate, logging changes.
func (s *Server) checkReadiness() {
	err := s.readiness()
	ready := err == nil
	was := s.ready.Swap(ready)
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, st)
	}
	s.health.SetServingStatus("", st)
	switch {
	case ready && !was:
		s.logger.Info("service ready", "service", s.name)
	case !ready && was:
		s.logger.Warn("service not ready", "service", s.name, "err", err)
	case !ready:
		s.logger.Debug("service not ready", "service", s.name, "err", err)
	}
}

// errNotReady refuses calls while the service is not ready.
var errNotReady = status.Error(codes.Unavailable, "the service is not ready yet, retry later")

// readyUnary refuses unary calls with Unavailable while the service is not ready.
func (s *Server) readyUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !s.ready.Load() && !auth.IsOpsMethod(info.FullMethod) {
		return nil, errNotReady
	}
	return handler(ctx, req)
}

// readyStream refuses streaming calls with Unavailable while the service is not ready.
func (s *Server) readyStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !s.ready.Load() && !auth.IsOpsMethod(info.FullMethod) {
		return errNotReady
	}
	return handler(srv, ss)
}

// ServeMetrics serves /metrics of reg on addr until ctx is done. An empty addr disables it.
func ServeMetrics(ctx context.Context, addr string, reg *prometheus.Registry, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return ServeHTTP(ctx, DefaultHTTPLimits().Server(addr, mux, logger), logger)
}

// ServeHTTP listens on srv.Addr and runs srv until ctx is done, then shuts it down gracefully.
func ServeHTTP(ctx context.Context, srv *http.Server, logger *slog.Logger) error {
	lis, err := (&net.ListenConfig{}).Listen(context.WithoutCancel(ctx), "tcp", srv.Addr) // a done ctx serves and stops
	if err != nil {
		return fmt.Errorf("listening on %s: %w", srv.Addr, err)
	}
	return ServeHTTPOn(ctx, srv, lis, logger)
}

// ServeHTTPOn runs srv on lis until ctx is done, then shuts it down gracefully (within 10s);
// lis is closed when it returns.
func ServeHTTPOn(ctx context.Context, srv *http.Server, lis net.Listener, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	logger.Info("http server listening", "addr", lis.Addr().String())
	select {
	case err := <-errc:
		_ = lis.Close()
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutting down http server: %w", err)
	}
	return nil
}

// NewLogger returns a JSON slog logger on stderr at the given level ("debug", "info", "warn",
// "error"). Every line logged with a context carries its trace_id and span_id (when traced) and
// its request_id (telemetry.NewLogHandler).
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
}
