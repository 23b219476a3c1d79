package server

import (
	"context"
	"errors"

	"google.golang.org/grpc"
)

// ErrStopping ends the streams of a server that is shutting down. CommonErrors answers it
// Unavailable, so that the caller reconnects (to another replica, or to this one restarted).
var ErrStopping = errors.New("the server is shutting down, reconnect")

// streamStop ends the long-lived streams (watches) when the server starts stopping, so that
// the graceful stop does not wait for streams that never end on their own and then cut them
// after the shutdown timeout.
type streamStop struct {
	ctx  context.Context
	stop context.CancelCauseFunc
}

func newStreamStop() *streamStop {
	// Not a request context: it lives as long as the server and is ended by Serve.
	ctx, stop := context.WithCancelCause(context.Background())
	return &streamStop{ctx: ctx, stop: stop}
}

// end makes every stream in flight, and every one starting later, see its context done.
func (s *streamStop) end() { s.stop(ErrStopping) }

// interceptor gives each streaming handler a context that is also done once the server starts
// stopping. A handler that ends for that reason (nil or a cancellation) ends with ErrStopping; a
// caller that went away first keeps its own status.
func (s *streamStop) interceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	unhook := context.AfterFunc(s.ctx, func() { cancel(ErrStopping) })
	defer unhook()
	err := handler(srv, &stoppingStream{ServerStream: ss, ctx: ctx})
	if ss.Context().Err() == nil && errors.Is(context.Cause(ctx), ErrStopping) && (err == nil || errors.Is(err, context.Canceled)) {
		return ErrStopping
	}
	return err
}

// stoppingStream is a stream whose context is the interceptor's.
type stoppingStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stoppingStream) Context() context.Context { return s.ctx }
