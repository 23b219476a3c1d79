package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tallyhq/tally/pkg/auth"
)

// testCodec encodes protobuf messages as protobuf and the plain test structs as JSON, so the
// hand-written test service needs no generated code.
type testCodec struct{}

func (testCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok {
		return proto.Marshal(m)
	}
	return json.Marshal(v)
}

func (testCodec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		return proto.Unmarshal(data, m)
	}
	return json.Unmarshal(data, v)
}

func (testCodec) Name() string { return "proto" }

// echo reports who the server saw and for which organization.
type echo struct {
	Subject string `json:"subject"`
	OrgID   string `json:"org_id"`
}

// unaryMethod returns a method echoing the caller's claims, run through the server's interceptor.
func unaryMethod(name string) grpc.MethodDesc {
	fullMethod := "/tally.test.v1.TestService/" + name
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(orgReq)
			if err := dec(in); err != nil {
				return nil, err
			}
			handler := func(ctx context.Context, req any) (any, error) {
				c, _ := auth.FromContext(ctx)
				return &echo{Subject: c.Subject, OrgID: req.(*orgReq).OrgId}, nil
			}
			if interceptor == nil {
				return handler(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, handler)
		},
	}
}

// watch is a server-streaming method answering the first request with one echo.
func watch(_ any, stream grpc.ServerStream) error {
	in := new(orgReq)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	c, _ := auth.FromContext(stream.Context())
	return stream.SendMsg(&echo{Subject: c.Subject, OrgID: in.OrgId})
}

// startServer serves the health service and the test service behind the auth interceptors on
// 127.0.0.1 and returns a client connection to it.
func startServer(t *testing.T, v auth.Verifier, p auth.Policy) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(
		grpc.ForceServerCodec(testCodec{}),
		grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(v, p)),
		grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(v, p)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "tally.test.v1.TestService",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{unaryMethod("Public"), unaryMethod("Members"), unaryMethod("OrgRead"), unaryMethod("Missing")},
		Streams:     []grpc.StreamDesc{{StreamName: "Watch", Handler: watch, ServerStreams: true}},
	}, struct{}{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(testCodec{})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// mint returns an HS256 token for c.
func mint(t *testing.T, c auth.Claims) string {
	t.Helper()
	tok, err := auth.Mint([]byte(testSecretText), c, time.Hour)
	require.NoError(t, err)
	return tok
}

func TestInterceptorsOverGRPC(t *testing.T) {
	v, err := auth.NewHS256Verifier([]byte(testSecretText))
	require.NoError(t, err)
	conn := startServer(t, v, testPolicy())

	memberTok := mint(t, *member("acme"))
	billingTok := mint(t, *service("billing"))
	expiredTok := signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", standardClaims(-2*time.Hour))
	withCreds := func(tok string) []grpc.CallOption {
		return []grpc.CallOption{grpc.PerRPCCredentials(auth.TokenCredentials(tok))}
	}
	withHeader := func(h string) func(context.Context) context.Context {
		return func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", h)
		}
	}
	withToken := func(tok string) func(context.Context) context.Context {
		return func(ctx context.Context) context.Context { return auth.OutgoingContext(ctx, tok) }
	}

	t.Run("health needs no token", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
	})

	tests := []struct {
		name        string
		method      string
		ctx         func(context.Context) context.Context
		opts        []grpc.CallOption
		org         string
		wantCode    codes.Code
		wantSubject string
	}{
		{name: "public without token", method: mPublic},
		{name: "public with token keeps claims", method: mPublic, opts: withCreds(memberTok), wantSubject: "user-1"},
		{name: "public with invalid token is anonymous", method: mPublic, opts: withCreds(expiredTok)},
		{name: "missing token", method: mMembers, wantCode: codes.Unauthenticated},
		{name: "expired token", method: mMembers, opts: withCreds(expiredTok), wantCode: codes.Unauthenticated},
		{name: "wrong scheme", method: mMembers, ctx: withHeader("Basic " + memberTok), wantCode: codes.Unauthenticated},
		{name: "empty bearer", method: mMembers, ctx: withHeader("Bearer "), wantCode: codes.Unauthenticated},
		{name: "lower-case scheme", method: mMembers, ctx: withHeader("bearer " + memberTok), wantSubject: "user-1"},
		{name: "outgoing context", method: mMembers, ctx: withToken(memberTok), wantSubject: "user-1"},
		{name: "token credentials", method: mMembers, opts: withCreds(memberTok), wantSubject: "user-1"},
		{name: "service refused by role rule", method: mMembers, opts: withCreds(billingTok), wantCode: codes.PermissionDenied},
		{name: "member own org", method: mOrgRead, opts: withCreds(memberTok), org: "acme", wantSubject: "user-1"},
		{name: "member other org", method: mOrgRead, opts: withCreds(memberTok), org: "globex", wantCode: codes.PermissionDenied},
		{name: "service any org", method: mOrgRead, opts: withCreds(billingTok), org: "globex", wantSubject: "service:billing"},
		{name: "registered but not in policy", method: "/tally.test.v1.TestService/Missing", opts: withCreds(memberTok), wantCode: codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			var out echo
			err := conn.Invoke(ctx, tt.method, &orgReq{OrgId: tt.org}, &out, tt.opts...)
			require.Equal(t, tt.wantCode, status.Code(err), "err: %v", err)
			if err == nil {
				require.Equal(t, tt.wantSubject, out.Subject)
			}
		})
	}
}

func TestStreamInterceptorOverGRPC(t *testing.T) {
	v, err := auth.NewHS256Verifier([]byte(testSecretText))
	require.NoError(t, err)
	conn := startServer(t, v, testPolicy())

	tests := []struct {
		name        string
		token       string
		org         string
		wantCode    codes.Code
		wantSubject string
	}{
		{name: "missing token", org: "acme", wantCode: codes.Unauthenticated},
		{name: "member own org", token: mint(t, *member("acme")), org: "acme", wantSubject: "user-1"},
		{name: "member other org", token: mint(t, *member("acme")), org: "globex", wantCode: codes.PermissionDenied},
		{name: "admin not admitted", token: mint(t, auth.Claims{Subject: "a", OrgID: "acme", Roles: []auth.Role{auth.RoleAdmin}}), org: "acme", wantCode: codes.PermissionDenied},
		{name: "service any org", token: mint(t, *service("billing")), org: "globex", wantSubject: "service:billing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.token != "" {
				ctx = auth.OutgoingContext(ctx, tt.token)
			}
			stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, mWatch)
			require.NoError(t, err)
			require.NoError(t, stream.SendMsg(&orgReq{OrgId: tt.org}))
			require.NoError(t, stream.CloseSend())
			var out echo
			err = stream.RecvMsg(&out)
			require.Equal(t, tt.wantCode, status.Code(err), "err: %v", err)
			if err == nil {
				require.Equal(t, tt.wantSubject, out.Subject)
				require.Equal(t, tt.org, out.OrgID)
			}
		})
	}
}

// fakeStream is a server stream carrying only a context.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestInterceptorsOpsMethods(t *testing.T) {
	v, err := auth.NewHS256Verifier([]byte(testSecretText))
	require.NoError(t, err)
	unary := auth.UnaryServerInterceptor(v, auth.Policy{})
	stream := auth.StreamServerInterceptor(v, auth.Policy{})

	tests := []struct {
		method   string
		wantCode codes.Code
	}{
		{method: "/grpc.health.v1.Health/Check"},
		{method: "/grpc.health.v1.Health/Watch"},
		{method: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"},
		{method: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"},
		{method: "/grpc.health.v1.HealthX/Check", wantCode: codes.PermissionDenied},
		{method: "/evil.grpc.health.v1.Health/Check", wantCode: codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			_, err := unary(t.Context(), nil, &grpc.UnaryServerInfo{FullMethod: tt.method},
				func(context.Context, any) (any, error) { return nil, nil })
			require.Equal(t, tt.wantCode, status.Code(err), "unary err: %v", err)

			err = stream(nil, fakeStream{ctx: t.Context()}, &grpc.StreamServerInfo{FullMethod: tt.method},
				func(any, grpc.ServerStream) error { return nil })
			require.Equal(t, tt.wantCode, status.Code(err), "stream err: %v", err)
		})
	}
}

// failingVerifier refuses every token with err.
type failingVerifier struct{ err error }

func (f failingVerifier) Verify(context.Context, string) (auth.Claims, error) {
	return auth.Claims{}, f.err
}

// TestInterceptorMessagesArePlain: callers learn the code and a plain reason, never the
// verification error (JWT library text, the JWKS URL, a dial error), the method or their input.
func TestInterceptorMessagesArePlain(t *testing.T) {
	hs, err := auth.NewHS256Verifier([]byte(testSecretText))
	require.NoError(t, err)
	internal := errors.New(`fetch JWKS: Get "http://10.0.0.7:8443/jwks": dial tcp 10.0.0.7:8443: connect: connection refused`)
	tests := []struct {
		name     string
		verifier auth.Verifier
		method   string
		token    string
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "no token", verifier: hs, method: mMembers, wantCode: codes.Unauthenticated, wantMsg: "missing bearer token"},
		{name: "expired", verifier: hs, method: mMembers, token: signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", standardClaims(-2*time.Hour)), wantCode: codes.Unauthenticated, wantMsg: "invalid token"},
		{name: "case-folded claim", verifier: hs, method: mMembers, token: signed(t, jwt.SigningMethodHS256, []byte(testSecretText), "", withClaims(map[string]any{"ROLES": []string{"ops"}})), wantCode: codes.Unauthenticated, wantMsg: "invalid token"},
		{name: "duplicated claim", verifier: hs, method: mMembers, token: signedRaw(hs256Header, payload(`"roles":["ops"]`)), wantCode: codes.Unauthenticated, wantMsg: "invalid token"},
		{name: "garbage", verifier: hs, method: mMembers, token: "a.b.c", wantCode: codes.Unauthenticated, wantMsg: "invalid token"},
		{name: "JWKS unreachable", verifier: failingVerifier{fmt.Errorf("%w: %w", auth.ErrUnavailable, internal)}, method: mMembers, token: "x.y.z", wantCode: codes.Unavailable, wantMsg: "tokens cannot be verified yet, retry later"},
		{name: "JWKS error", verifier: failingVerifier{internal}, method: mMembers, token: "x.y.z", wantCode: codes.Unauthenticated, wantMsg: "invalid token"},
		{name: "not in policy", verifier: hs, method: "/tally.test.v1.TestService/Missing", wantCode: codes.PermissionDenied, wantMsg: "no caller may call this method"},
		{name: "other organization", verifier: hs, method: mOrgRead, token: mint(t, *member("acme")), wantCode: codes.PermissionDenied, wantMsg: "the organization is not yours"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := startServer(t, tt.verifier, testPolicy())
			ctx := t.Context()
			if tt.token != "" {
				ctx = auth.OutgoingContext(ctx, tt.token)
			}
			err := conn.Invoke(ctx, tt.method, &orgReq{OrgId: "globex-0123456789"}, &echo{})
			require.Equal(t, tt.wantCode, status.Code(err), "err: %v", err)
			require.Equal(t, tt.wantMsg, status.Convert(err).Message())
		})
	}
}

func TestRefusalDetailIsForLogs(t *testing.T) {
	v, err := auth.NewHS256Verifier([]byte(testSecretText))
	require.NoError(t, err)
	unary := auth.UnaryServerInterceptor(v, testPolicy())
	ctx := auth.OutgoingContext(t.Context(), "x")
	md, _ := metadata.FromOutgoingContext(ctx)
	_, err = unary(metadata.NewIncomingContext(t.Context(), md), &orgReq{}, &grpc.UnaryServerInfo{FullMethod: mMembers},
		func(context.Context, any) (any, error) { return nil, nil })
	require.EqualError(t, err, "invalid token", "wrapping the error leaks nothing")
	require.ErrorContains(t, auth.RefusalDetail(fmt.Errorf("handler: %w", err)), "three dot-separated segments")
	require.NoError(t, auth.RefusalDetail(errors.New("other")))
}
