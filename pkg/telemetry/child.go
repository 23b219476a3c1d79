package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// childProvider hands out tracers that start spans only under a recording parent.
type childProvider struct {
	trace.TracerProvider
}

// Tracer implements trace.TracerProvider.
func (p childProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{Tracer: p.TracerProvider.Tracer(name, opts...)}
}

// childTracer starts a span only when ctx carries a recording one; otherwise it returns ctx and
// its (non-recording) span unchanged, so nothing is exported.
type childTracer struct {
	trace.Tracer
}

// Start implements trace.Tracer.
func (t childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return t.Tracer.Start(ctx, name, opts...)
}
