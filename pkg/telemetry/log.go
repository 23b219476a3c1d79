package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/tallyhq/tally/pkg/server/requestid"
)

// Log attribute keys added from the context of a record.
const (
	TraceIDKey   = "trace_id"
	SpanIDKey    = "span_id"
	RequestIDKey = "request_id"
)

// NewLogHandler returns inner adding to every record logged with a context (InfoContext,
// Log, LogAttrs…) the trace_id and span_id of its span, when it has one, and its request id
// (pkg/server/requestid) unless the logger or the record names one already.
func NewLogHandler(inner slog.Handler) slog.Handler {
	return &logHandler{inner: inner}
}

type logHandler struct {
	inner slog.Handler
	// hasRequestID: a With("request_id", …) of this logger names it already.
	hasRequestID bool
}

// Enabled implements slog.Handler.
func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.inner.Handle(ctx, r)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String()))
	}
	if !h.hasRequestID {
		if id := requestid.From(ctx); id != "" && !hasAttr(r, RequestIDKey) {
			r.AddAttrs(slog.String(RequestIDKey, id))
		}
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.hasRequestID
	for _, a := range attrs {
		has = has || a.Key == RequestIDKey
	}
	return &logHandler{inner: h.inner.WithAttrs(attrs), hasRequestID: has}
}

// WithGroup implements slog.Handler.
func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{inner: h.inner.WithGroup(name), hasRequestID: h.hasRequestID}
}

// hasAttr reports whether r has a top-level attribute key.
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
