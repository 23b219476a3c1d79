package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/grpc"

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
