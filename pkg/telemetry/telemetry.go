// Package telemetry sets up a process's OpenTelemetry traces from the standard OTel environment
// variables and hands the instrumentation of its gRPC servers and clients, its HTTP handler and its
// PostgreSQL pools the tracer provider and the W3C propagator explicitly (no global provider).
//
// Traces are exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set. Otherwise Start returns a nil *Telemetry, every
// method of which is valid and installs nothing: no stats handler, no pgx tracer, no wrapper, so a
// service without an exporter pays nothing per call.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// shutdownTimeout bounds the flush of the spans still buffered when a process stops.
const shutdownTimeout = 5 * time.Second

// Telemetry is a process's tracer provider and propagator. A nil *Telemetry is tracing off.
type Telemetry struct {
	provider   *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
}

// Start returns the telemetry of the process named service (the default service.name; the
// environment's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win), or nil when no OTLP endpoint
// is configured or OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The exporter speaks
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL ("grpc", or the default
// "http/protobuf"); the endpoint, headers, timeout, sampler (OTEL_TRACES_SAMPLER, default
// parentbased_always_on) and batching (OTEL_BSP_*) are read by the OTel SDK itself. Shutdown
// flushes what is buffered.
func Start(ctx context.Context, service string) (*Telemetry, error) {
	if !exportConfigured(os.Getenv) {
		return nil, nil
	}
	exp, err := newExporter(ctx, os.Getenv)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // after the default: OTEL_SERVICE_NAME overrides it
		resource.WithTelemetrySDK(),
		resource.WithProcessPID(),
		resource.WithHost(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: describing the process: %w", err)
	}
	return &Telemetry{
		provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)),
		propagator: propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{}, propagation.Baggage{},
		),
	}, nil
}

// exportConfigured reports whether the environment asks for OTLP trace export.
func exportConfigured(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// newExporter returns the OTLP span exporter of the configured protocol; the exporters read the
// rest of their OTEL_EXPORTER_OTLP_* configuration themselves.
func newExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported (grpc or http/protobuf)", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: creating the OTLP %s exporter: %w", protocol, err)
	}
	return exp, nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Telemetry) Enabled() bool { return t != nil }

// TracerProvider returns the provider of t, or a no-op provider when t is nil.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil {
		return tracenoop.NewTracerProvider()
	}
	return t.provider
}

// Shutdown flushes the buffered spans and stops the exporter, within a few seconds even when ctx
// is done already (a stopping process still flushes).
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: flushing spans: %w", err)
	}
	return nil
}

// GRPCServerOptions returns the options that trace every call a gRPC server serves (a span per
// call, the caller's traceparent as its parent); none when t is nil. Health checks and
// reflection are not traced.
func (t *Telemetry) GRPCServerOptions() []grpc.ServerOption {
	if t == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(t.grpcOptions()...))}
}

// DialOption returns the option that traces every call of a gRPC client connection and sends
// its traceparent; a no-op option when t is nil. Pass it to rpcclient.Dial or DialSource.
func (t *Telemetry) DialOption() grpc.DialOption {
	if t == nil {
		return grpc.EmptyDialOption{}
	}
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(t.grpcOptions()...))
}

func (t *Telemetry) grpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(t.provider),
		otelgrpc.WithPropagators(t.propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus (pkg/server)
		otelgrpc.WithFilter(traced),
	}
}

// traced leaves health checks and reflection out of the traces.
func traced(info *stats.RPCTagInfo) bool {
	return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.Health/") &&
		!strings.HasPrefix(info.FullMethodName, "/grpc.reflection.")
}

// HTTPHandler returns h traced: a span per request, named operation until the handler names its
// route (SetRoute). The server is public: a caller's traceparent is recorded as a link, not
// trusted as the parent. It returns h itself when t is nil.
func (t *Telemetry) HTTPHandler(h http.Handler, operation string) http.Handler {
	if t == nil {
		return h
	}
	return otelhttp.NewHandler(h, operation,
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
	)
}

// SetRoute names the HTTP server span of ctx after its route pattern ("GET /v1/orgs/{org_id}/balance").
func SetRoute(ctx context.Context, method, route string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() || route == "" {
		return
	}
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.route", route))
}

// PGTracer returns the pgx tracer that makes a span of every query, batch and connection
// acquisition made within a traced call (none outside one: background loops make no root spans),
// without the query's arguments; nil when t is nil. Set it as pg.Options.Tracer.
func (t *Telemetry) PGTracer() pgx.QueryTracer {
	if t == nil {
		return nil
	}
	return otelpgx.NewTracer(
		otelpgx.WithTracerProvider(t.provider),
		otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()),
	)
}

// ChildSpans returns a provider whose spans exist only under a recording parent, for libraries
// that would otherwise start a root span for every background command (go-redis hooks); the
// no-op provider when t is nil.
func (t *Telemetry) ChildSpans() trace.TracerProvider {
	if t == nil {
		return tracenoop.NewTracerProvider()
	}
	return childProvider{TracerProvider: t.provider}
}
