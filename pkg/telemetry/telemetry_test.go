package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/tallyhq/tally/pkg/server/requestid"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/pkg/telemetry/telemetrytest"
)

// TestStartNeedsAnEndpoint requires tracing off (a nil Telemetry that installs nothing) unless an
// OTLP endpoint is configured and the SDK not disabled.
func TestStartNeedsAnEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"} {
				t.Setenv(k, tc.env[k])
			}
			tel, err := telemetry.Start(t.Context(), "svc")
			require.NoError(t, err)
			require.Equal(t, tc.on, tel.Enabled())
			require.NoError(t, tel.Shutdown(t.Context()))
		})
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	_, err := telemetry.Start(t.Context(), "svc")
	require.ErrorContains(t, err, "http/json", "an unsupported protocol is a configuration error")
}

// TestOffInstallsNothing requires the nil Telemetry to add no handler, option, tracer or wrapper.
func TestOffInstallsNothing(t *testing.T) {
	t.Parallel()
	var tel *telemetry.Telemetry
	require.Empty(t, tel.GRPCServerOptions())
	require.Equal(t, grpc.EmptyDialOption{}, tel.DialOption())
	require.Nil(t, tel.PGTracer())
	h := http.RedirectHandler("/", http.StatusFound)
	require.Same(t, h, tel.HTTPHandler(h, "x"), "the handler itself, unwrapped")
	_, span := tel.ChildSpans().Tracer("t").Start(t.Context(), "s")
	require.False(t, span.IsRecording())
	require.NoError(t, tel.Shutdown(t.Context()))
}

// TestChildSpansOnlyUnderAParent records a span under a recording parent and none without one,
// and exports the parent's HTTP span named after the route SetRoute gave it.
func TestChildSpansOnlyUnderAParent(t *testing.T) {
	collector := telemetrytest.Start(t)
	collector.Setenv(t)
	tel, err := telemetry.Start(t.Context(), "child-test")
	require.NoError(t, err)
	tracer := tel.ChildSpans().Tracer("redis")
	_, orphan := tracer.Start(t.Context(), "orphan")
	require.False(t, orphan.IsRecording(), "no root span from a background command")
	orphan.End()
	h := tel.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, child := tracer.Start(r.Context(), "GET")
		require.True(t, child.IsRecording())
		child.End()
		telemetry.SetRoute(r.Context(), r.Method, "/v1/things/{id}")
		w.WriteHeader(http.StatusNoContent)
	}), "test")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/things/7", nil))
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.NoError(t, tel.Shutdown(t.Context()))
	spans := collector.Spans()
	require.Len(t, spans, 2, "%+v", spans)
	names := map[string]telemetrytest.Span{}
	for _, s := range spans {
		names[s.Name] = s
	}
	require.Contains(t, names, "GET /v1/things/{id}")
	require.Equal(t, names["GET /v1/things/{id}"].SpanID, names["GET"].ParentSpanID)
	require.Equal(t, "child-test", names["GET"].Service)
}

// TestLogHandler requires trace_id and span_id from the record's context, the request id once
// (not again when the logger or the record names it), and nothing for a record without context.
func TestLogHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
	})
	ctx := requestid.With(trace.ContextWithSpanContext(t.Context(), sc), "rid-1")
	logger.InfoContext(ctx, "with context")
	logger.With("request_id", "rid-1").InfoContext(ctx, "logger names it")
	logger.InfoContext(ctx, "record names it", "request_id", "rid-1")
	logger.InfoContext(context.WithoutCancel(t.Context()), "no ids")
	logger.WithGroup("g").InfoContext(ctx, "grouped")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5)
	for i, want := range []string{
		`"trace_id":"01020300000000000000000000000000","span_id":"0405060000000000","request_id":"rid-1"`,
		`"request_id":"rid-1","trace_id":"01020300000000000000000000000000","span_id":"0405060000000000"}`,
		`"request_id":"rid-1","trace_id":"01020300000000000000000000000000","span_id":"0405060000000000"}`,
	} {
		require.Contains(t, lines[i], want, lines[i])
		require.Equal(t, 1, strings.Count(lines[i], `"request_id"`), lines[i])
	}
	var plain map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[3]), &plain))
	require.NotContains(t, plain, "trace_id")
	require.NotContains(t, plain, "request_id")
	require.Contains(t, lines[4], `"g":{"trace_id":"01020300000000000000000000000000"`, "inside the logger's group")
}
