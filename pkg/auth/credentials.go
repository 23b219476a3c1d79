package auth

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
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

// sourceCredentials attaches the current token of a TokenSource to every RPC.
type sourceCredentials struct {
	src TokenSource
}

// SourceCredentials returns per-RPC credentials asking src for the token of every call, so a
// renewed token is used as soon as it exists. A call for which src has no valid token fails with
// Unavailable before it is sent.
func SourceCredentials(src TokenSource) credentials.PerRPCCredentials {
	return sourceCredentials{src: src}
}

// GetRequestMetadata returns the authorization header with src's current token.
func (s sourceCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	tok, err := s.src.Token(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "no valid service token: %v", err)
	}
	return map[string]string{authorizationHeader: "Bearer " + tok}, nil
}

// RequireTransportSecurity reports false, as TokenCredentials.
func (s sourceCredentials) RequireTransportSecurity() bool {
	return false
}

// OutgoingContext returns a copy of ctx whose outgoing gRPC metadata carries token as a bearer token.
func OutgoingContext(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, authorizationHeader, "Bearer "+token)
}
