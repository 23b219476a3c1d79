package auth

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// IsOpsMethod reports whether fullMethod belongs to a service always reachable without a token:
// health checks and server reflection, used by ops tooling.
func IsOpsMethod(fullMethod string) bool {
	service, _, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		return false
	}
	switch service {
	case "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection":
		return true
	}
	return false
}

// refusal is a status error for the caller: its message is plain (never library text, keys or
// method names) and Error returns only that message, so wrapping it leaks nothing. The detail
// is for the server's logs (see RefusalDetail).
type refusal struct {
	st     *status.Status
	detail error
}

// refuse returns a refusal with code and msg for the caller and detail for the logs.
func refuse(code codes.Code, msg string, detail error) error {
	return &refusal{st: status.New(code, msg), detail: detail}
}

// Error returns the caller's message.
func (r *refusal) Error() string { return r.st.Message() }

// GRPCStatus returns the status sent to the caller.
func (r *refusal) GRPCStatus() *status.Status { return r.st }

// RefusalDetail returns why the interceptors or the policy refused a call, for logs: the
// verification error of an invalid token, the method and subject of a denied call. It returns
// nil for other errors.
func RefusalDetail(err error) error {
	var r *refusal
	if errors.As(err, &r) {
		return r.detail
	}
	return nil
}

// Errors of the authorization header, safe to show the caller.
var (
	errNoToken   = errors.New("missing bearer token")
	errNotBearer = errors.New("authorization header is not one bearer token")
)

// bearerToken extracts the token of the "authorization: Bearer <jwt>" metadata of ctx.
func bearerToken(ctx context.Context) (string, error) {
	// One key, not FromIncomingContext: that copies all the call's metadata on every call.
	values := metadata.ValueFromIncomingContext(ctx, authorizationHeader)
	if len(values) == 0 {
		return "", errNoToken
	}
	if len(values) > 1 {
		return "", errNotBearer
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", errNotBearer
	}
	return token, nil
}

// authenticate verifies the caller's token and applies p to fullMethod, leaving the organization
// check to the caller. It returns the context to use (with claims when a valid token was sent) and
// whether the request's organization must match the caller's.
func authenticate(ctx context.Context, v Verifier, p Policy, fullMethod string) (context.Context, *Claims, bool, error) {
	if IsOpsMethod(fullMethod) {
		return ctx, nil, false, nil
	}
	rule, ok := p[fullMethod]
	if !ok {
		return ctx, nil, false, notInPolicy(fullMethod)
	}
	var claims *Claims
	token, err := bearerToken(ctx)
	if err == nil {
		if v == nil {
			err = errors.New("no verifier configured")
		} else {
			var c Claims
			if c, err = v.Verify(ctx, token); err == nil {
				claims = &c
				ctx = WithClaims(ctx, c)
			}
		}
	}
	if err != nil && !rule.Public {
		switch {
		case errors.Is(err, errNoToken):
			return ctx, nil, false, refuse(codes.Unauthenticated, errNoToken.Error(), nil)
		case errors.Is(err, errNotBearer):
			return ctx, nil, false, refuse(codes.Unauthenticated, err.Error(), nil)
		case errors.Is(err, ErrUnavailable):
			return ctx, nil, false, refuse(codes.Unavailable, "tokens cannot be verified yet, retry later", err)
		}
		return ctx, nil, false, refuse(codes.Unauthenticated, "invalid token", err)
	}
	orgBound, err := p.admit(claims, fullMethod)
	if err != nil {
		return ctx, nil, false, err
	}
	return ctx, claims, orgBound, nil
}

// UnaryServerInterceptor authenticates every unary call with v and authorizes it with p. Health and
// reflection methods are always allowed; verified claims are available through FromContext.
func UnaryServerInterceptor(v Verifier, p Policy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, claims, orgBound, err := authenticate(ctx, v, p, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if orgBound {
			if err := checkOrg(claims, info.FullMethod, req); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor authenticates every streaming call with v and authorizes it with p before
// the handler runs. For organization-scoped methods the first received message must name the
// caller's organization; a mismatch fails that RecvMsg with PermissionDenied.
func StreamServerInterceptor(v Verifier, p Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, claims, orgBound, err := authenticate(ss.Context(), v, p, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &authStream{
			ServerStream: ss,
			ctx:          ctx,
			claims:       claims,
			method:       info.FullMethod,
			checkOrg:     orgBound,
		})
	}
}

// authStream carries the authenticated context and checks the organization of the first message.
type authStream struct {
	grpc.ServerStream
	ctx      context.Context
	claims   *Claims
	method   string
	checkOrg bool
	// err is the organization failure returned by every RecvMsg once the check failed.
	err error
}

// Context returns the context carrying the caller's claims.
func (s *authStream) Context() context.Context {
	return s.ctx
}

// RecvMsg receives m and, for the first message of an organization-scoped method, checks its org.
func (s *authStream) RecvMsg(m any) error {
	if s.err != nil {
		return s.err
	}
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if !s.checkOrg {
		return nil
	}
	s.checkOrg = false
	if err := checkOrg(s.claims, s.method, m); err != nil {
		s.err = err
		return err
	}
	return nil
}
