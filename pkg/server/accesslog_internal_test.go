package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/telemetry"
)

// BenchmarkAccessLog is the per-call cost the access log adds to every unary call (tracing off):
// its record in the context, the caller's kind from the verified claims and one JSON line
// (written to io.Discard: the cost of the write itself is the log sink's).
func BenchmarkAccessLog(b *testing.B) {
	for _, bc := range []struct {
		name   string
		logged bool
	}{{"without", false}, {"with", true}} {
		b.Run(bc.name, func(b *testing.B) {
			logger := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(io.Discard, nil)))
			access := accessLog{logger: logger}
			claims := auth.Claims{Subject: "service:bench", Roles: []auth.Role{auth.RoleService}}
			info := &grpc.UnaryServerInfo{FullMethod: "/tally.ledger.v1.LedgerService/Authorize"}
			handler := func(ctx context.Context, _ any) (any, error) {
				if rec, ok := ctx.Value(accessRecordKey{}).(*accessRecord); ok {
					rec.caller = CallerKind(claims)
				}
				return nil, nil
			}
			ctx, _ := incomingRequestID(b.Context())
			b.ReportAllocs()
			for b.Loop() {
				if bc.logged {
					_, _ = access.unary(ctx, nil, info, handler)
				} else {
					_, _ = handler(ctx, nil)
				}
			}
		})
	}
}

// claimsVerifier accepts every token as its claims: the cost of verifying is not measured.
type claimsVerifier struct{ claims auth.Claims }

func (v claimsVerifier) Verify(context.Context, string) (auth.Claims, error) { return v.claims, nil }

// headerStream is the header half of a server transport stream, joining headers as grpc's does.
type headerStream struct {
	grpc.ServerTransportStream
	header metadata.MD
}

func (s *headerStream) SetHeader(md metadata.MD) error {
	s.header = metadata.Join(s.header, md)
	return nil
}

// BenchmarkCallerHeader is the per-call cost of answering the verified caller kind in the
// x-tally-caller header: recordingVerifier against the bare verifier, in a call's context.
func BenchmarkCallerHeader(b *testing.B) {
	inner := claimsVerifier{claims: auth.Claims{Subject: "service:bench", Roles: []auth.Role{auth.RoleService}}}
	for _, bc := range []struct {
		name string
		v    auth.Verifier
		ask  bool
	}{{"bare", inner, false}, {"recording, not asked", recordingVerifier{Verifier: inner}, false}, {"recording, asked", recordingVerifier{Verifier: inner}, true}} {
		b.Run(bc.name, func(b *testing.B) {
			st := &headerStream{}
			rid := metadata.Pairs(RequestIDHeader, "bench-request") // set before, as requestIDUnary does
			ctx := grpc.NewContextWithServerTransportStream(b.Context(), st)
			if bc.ask {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(CallerRequestHeader, "1"))
			}
			ctx = context.WithValue(ctx, accessRecordKey{}, &accessRecord{caller: CallerAnonymous})
			b.ReportAllocs()
			for b.Loop() {
				st.header = rid
				_, _ = bc.v.Verify(ctx, "token")
			}
		})
	}
}
