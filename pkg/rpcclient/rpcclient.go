// Package rpcclient dials tally's gRPC services with a bearer token.
package rpcclient

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tallyhq/tally/pkg/auth"
)

// Dial opens a plaintext connection to target that sends token on every call. Plaintext is for
// loopback and private networks; put mTLS or a mesh in front across hosts.
func Dial(target, token string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		all = append(all, grpc.WithPerRPCCredentials(auth.TokenCredentials(token)))
	}
	conn, err := grpc.NewClient(target, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", target, err)
	}
	return conn, nil
}
