package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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

// TestAccessSampler is the sampled access log's decision, call by call: of a sampled method's
// OK calls under Slow the first and then every Every-th is logged, carrying sample_every; a
// failed or slow call and every call of another method is logged alone.
func TestAccessSampler(t *testing.T) {
	t.Parallel()
	const hot, other = "/tally.ledger.v1.LedgerService/Authorize", "/tally.ledger.v1.LedgerService/Credit"
	type call struct {
		method string
		code   codes.Code
		took   time.Duration
		logged bool
		every  uint64
	}
	fast, slow := time.Millisecond, 250*time.Millisecond
	cases := []struct {
		name     string
		sampling AccessLogSampling
		calls    []call
	}{
		{"zero value logs every call", AccessLogSampling{}, []call{
			{hot, codes.OK, fast, true, 0}, {hot, codes.OK, fast, true, 0}, {other, codes.OK, fast, true, 0},
		}},
		{"every 1 logs every call", AccessLogSampling{Methods: []string{hot}, Every: 1}, []call{
			{hot, codes.OK, fast, true, 0}, {hot, codes.OK, fast, true, 0},
		}},
		{"one fast OK call in three", AccessLogSampling{Methods: []string{hot}, Every: 3}, []call{
			{hot, codes.OK, fast, true, 3}, {hot, codes.OK, fast, false, 0}, {hot, codes.OK, fast, false, 0},
			{hot, codes.OK, fast, true, 3}, {hot, codes.OK, fast, false, 0},
		}},
		{"failed calls are always logged and not counted", AccessLogSampling{Methods: []string{hot}, Every: 3}, []call{
			{hot, codes.OK, fast, true, 3}, {hot, codes.Unavailable, fast, true, 0}, {hot, codes.InvalidArgument, fast, true, 0},
			{hot, codes.Internal, fast, true, 0}, {hot, codes.OK, fast, false, 0}, {hot, codes.OK, fast, false, 0}, {hot, codes.OK, fast, true, 3},
		}},
		{"slow calls are always logged (default Slow)", AccessLogSampling{Methods: []string{hot}, Every: 3}, []call{
			{hot, codes.OK, fast, true, 3}, {hot, codes.OK, slow, true, 0}, {hot, codes.OK, DefaultAccessLogSlow, true, 0},
			{hot, codes.OK, DefaultAccessLogSlow - 1, false, 0},
		}},
		{"Slow set", AccessLogSampling{Methods: []string{hot}, Every: 3, Slow: 5 * time.Millisecond}, []call{
			{hot, codes.OK, fast, true, 3}, {hot, codes.OK, 5 * time.Millisecond, true, 0}, {hot, codes.OK, fast, false, 0},
		}},
		{"other methods are not sampled", AccessLogSampling{Methods: []string{hot}, Every: 3}, []call{
			{other, codes.OK, fast, true, 0}, {other, codes.OK, fast, true, 0}, {other, codes.OK, fast, true, 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newAccessSampler(tc.sampling)
			for i, c := range tc.calls {
				logged, every := s.sample(c.method, c.code, c.took)
				require.Equal(t, c.logged, logged, "call %d logged", i)
				if logged {
					require.Equal(t, c.every, every, "call %d sample_every", i)
				}
			}
		})
	}
}
