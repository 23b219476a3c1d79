package server

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tallyhq/tally/pkg/server/requestid"
)

// RequestIDHeader is the metadata key of the request id. A caller's id is kept when it is 1..64
// of [A-Za-z0-9._-]; otherwise (or without one) the server makes a new 16-byte hex id. Either
// way it is echoed as a response header, logged with the call's error and forwarded by
// pkg/rpcclient on the calls the handler makes.
const RequestIDHeader = requestid.Header

// RequestID returns the request id of the call ctx belongs to, or "" outside a call.
func RequestID(ctx context.Context) string { return requestid.From(ctx) }

// WithRequestID returns ctx carrying id (a new id when id is not acceptable): for work that starts
// outside a gRPC call, such as an HTTP handler or a worker, whose outgoing calls should share one.
func WithRequestID(ctx context.Context, id string) context.Context { return requestid.With(ctx, id) }

// Logger returns base with the request id of ctx, when there is one.
func Logger(ctx context.Context, base *slog.Logger) *slog.Logger {
	if id := RequestID(ctx); id != "" {
		return base.With("request_id", id)
	}
	return base
}

// incomingRequestID returns ctx carrying the caller's request id or a new one.
func incomingRequestID(ctx context.Context) (context.Context, string) {
	var id string
	// ValueFromIncomingContext, not FromIncomingContext: that copies all the call's metadata.
	if v := metadata.ValueFromIncomingContext(ctx, RequestIDHeader); len(v) == 1 {
		id = v[0]
	}
	ctx = requestid.With(ctx, id)
	return ctx, requestid.From(ctx)
}

// requestIDUnary gives every unary call a request id and echoes it as a response header.
func requestIDUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, id := incomingRequestID(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id)) // fails only once headers are sent
	return handler(ctx, req)
}

// requestIDStream gives every streaming call a request id and echoes it as a response header.
func requestIDStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, id := incomingRequestID(ss.Context())
	_ = ss.SetHeader(metadata.Pairs(RequestIDHeader, id))
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

// contextStream is a ServerStream with another context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context implements grpc.ServerStream.
func (s *contextStream) Context() context.Context { return s.ctx }
