// Package telemetrytest is a real OTLP/gRPC trace receiver in the test process: the services a
// test starts export their spans to it over the network, as they would to a collector.
package telemetrytest

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// Span is one received span, its ids in lowercase hex (the parent "" for a root span).
type Span struct {
	Service      string // the resource's service.name
	Scope        string // the instrumentation scope (otelgrpc, otelhttp, otelpgx…)
	Name         string
	Kind         tracepb.Span_SpanKind
	TraceID      string
	SpanID       string
	ParentSpanID string
	Attributes   map[string]string // string-valued attributes
	Links        []Link            // the spans this one is linked to
}

// Link names a linked span.
type Link struct {
	TraceID string
	SpanID  string
}

// Collector receives OTLP trace exports over gRPC.
type Collector struct {
	collectortracepb.UnimplementedTraceServiceServer

	// Endpoint is the collector's URL for OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string

	mu    sync.Mutex
	spans []Span
}

// Start serves a collector on a loopback port until the test ends.
func Start(t testing.TB) *Collector {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &Collector{Endpoint: "http://" + lis.Addr().String()}
	srv := grpc.NewServer()
	collectortracepb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c
}

// Setenv points the OTel exporters of the processes the test starts at c (OTLP over gRPC,
// exporting every 50ms). Tests using it cannot run in parallel (testing.T.Setenv).
func (c *Collector) Setenv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.Endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_SERVICE_NAME", "")
}

// Export implements the OTLP TraceService.
func (c *Collector) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := attributes(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, Span{
					Service: service, Scope: ss.GetScope().GetName(), Name: s.GetName(), Kind: s.GetKind(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()), Attributes: attributes(s.GetAttributes()),
					Links: links(s.GetLinks()),
				})
			}
		}
	}
	c.mu.Lock()
	c.spans = append(c.spans, got...)
	c.mu.Unlock()
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

// Spans returns the spans received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Trace returns the spans received so far of the trace traceID.
func (c *Collector) Trace(traceID string) []Span {
	var out []Span
	for _, s := range c.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

func attributes(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if v, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_StringValue); ok {
			m[kv.GetKey()] = v.StringValue
		}
	}
	return m
}

func links(ls []*tracepb.Span_Link) []Link {
	var out []Link
	for _, l := range ls {
		out = append(out, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
	}
	return out
}

// Descends reports whether s is a descendant of the span whose id is ancestor, following the
// parent links through spans (one trace's).
func Descends(spans []Span, s Span, ancestor string) bool {
	byID := make(map[string]Span, len(spans))
	for _, x := range spans {
		byID[x.SpanID] = x
	}
	for range spans {
		if s.ParentSpanID == ancestor {
			return true
		}
		parent, ok := byID[s.ParentSpanID]
		if !ok {
			return false
		}
		s = parent
	}
	return false
}
