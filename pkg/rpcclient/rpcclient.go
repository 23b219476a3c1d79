// Package rpcclient dials tally's gRPC services with a bearer token. Every call forwards the
// request id of its context (server.RequestID) as x-request-id, so a chain of calls shares one.
// Every connection balances its calls round-robin over the addresses its target resolves to:
// host:port or dns:///host:port (each DNS record: in Kubernetes a headless Service), or a fixed
// list, static:///host1:port,host2:port (or host1:port,host2:port); see balance.go.
// Dialing with telemetry.Telemetry.DialOption() also traces every call (otelgrpc's client stats
// handler) and sends its W3C traceparent; without it nothing is added.
package rpcclient

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/server/requestid"
)

// Dial opens a plaintext connection to target that sends token on every call (none when empty).
// Plaintext is for loopback and private networks; put mTLS or a mesh in front across hosts.
func Dial(target, token string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if token != "" {
		opts = append([]grpc.DialOption{grpc.WithPerRPCCredentials(auth.TokenCredentials(token))}, opts...)
	}
	return dial(target, opts)
}

// DialSource opens a plaintext connection to target whose every call carries the current token
// of src (a service's own identity, renewed before it expires): see auth.SourceCredentials.
func DialSource(target string, src auth.TokenSource, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if src == nil {
		return nil, fmt.Errorf("dialing %s: the service has no identity of its own "+
			"(with TALLY_JWKS_URL set TALLY_SERVICE_TOKEN_FILE, TALLY_OAUTH_CLIENT_ID and TALLY_OAUTH_CLIENT_SECRET, or TALLY_SERVICE_TOKEN)", target)
	}
	return dial(target, append([]grpc.DialOption{grpc.WithPerRPCCredentials(auth.SourceCredentials(src))}, opts...))
}

func dial(target string, opts []grpc.DialOption) (*grpc.ClientConn, error) {
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(forwardRequestIDUnary),
		grpc.WithChainStreamInterceptor(forwardRequestIDStream),
	}, balanceOptions()...)
	conn, err := grpc.NewClient(normalizeTarget(target), append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", target, err)
	}
	return conn, nil
}

// WithRequestID returns ctx with the request id it carries (if any) as outgoing x-request-id
// metadata, unless the outgoing metadata names one already.
func WithRequestID(ctx context.Context) context.Context {
	id := requestid.From(ctx)
	if id == "" {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(requestid.Header)) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, requestid.Header, id)
}

func forwardRequestIDUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(WithRequestID(ctx), method, req, reply, cc, opts...)
}

func forwardRequestIDStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(WithRequestID(ctx), desc, cc, method, opts...)
}
