package auth

import (
	"context"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// authorizationHeader is the metadata key carrying the bearer token.
const authorizationHeader = "authorization"

// tokenCredentials attaches a fixed bearer token to every RPC.
type tokenCredentials struct {
	token string
}

// TokenCredentials returns per-RPC credentials sending token as "authorization: Bearer <token>".
// Transport security is not required so that plaintext loopback connections work in development.
func TokenCredentials(token string) credentials.PerRPCCredentials {
	return tokenCredentials{token: token}
}

// GetRequestMetadata returns the authorization header.
func (t tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{authorizationHeader: "Bearer " + t.token}, nil
}

// RequireTransportSecurity reports false: tokens may travel over plaintext loopback in development.
func (t tokenCredentials) RequireTransportSecurity() bool {
	return false
}

// OutgoingContext returns a copy of ctx whose outgoing gRPC metadata carries token as a bearer token.
func OutgoingContext(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, authorizationHeader, "Bearer "+token)
}
