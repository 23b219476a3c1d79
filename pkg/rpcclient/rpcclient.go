// Package rpcclient dials tally's gRPC services with a bearer token.
package rpcclient

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tallyhq/tally/pkg/auth"
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
	all := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(target, all...)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", target, err)
	}
	return conn, nil
}
