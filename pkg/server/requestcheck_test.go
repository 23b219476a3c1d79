package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
)

// reachedLedger counts the calls that got past the interceptors.
type reachedLedger struct {
	ledgerv1.UnimplementedLedgerServiceServer
	calls atomic.Int64
}

func (l *reachedLedger) Debit(context.Context, *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
	l.calls.Add(1)
	return &ledgerv1.DebitResponse{TransactionId: "tx"}, nil
}

func (l *reachedLedger) WatchEvents(_ *ledgerv1.WatchEventsRequest, stream ledgerv1.LedgerService_WatchEventsServer) error {
	l.calls.Add(1)
	return stream.Send(&ledgerv1.WatchEventsResponse{Event: &ledgerv1.BalanceEvent{Sequence: 1}})
}

const testSecret = "requestcheck-test-secret-0123456789"

func startTestServer(t *testing.T) (*grpc.ClientConn, *reachedLedger, string) {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte(testSecret))
	require.NoError(t, err)
	backends := []auth.Role{auth.RoleService}
	s, err := New(Config{
		Name:     "test",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verifier: v,
		Policy: auth.Policy{
			"/tally.ledger.v1.LedgerService/Debit":       {Roles: backends},
			"/tally.ledger.v1.LedgerService/WatchEvents": {Roles: backends},
		},
	})
	require.NoError(t, err)
	l := &reachedLedger{}
	ledgerv1.RegisterLedgerServiceServer(s.GRPC(), l)
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	tok, err := auth.Mint([]byte(testSecret), auth.Claims{Subject: "backend", Roles: backends}, time.Hour)
	require.NoError(t, err)
	return conn, l, tok
}

// TestBadBytesAreInvalidArgument sends requests grpc-go cannot decode or that break the text
// rules, to a unary and a streaming method and to the health service, and requires
// InvalidArgument naming the field, before any handler runs.
func TestBadBytesAreInvalidArgument(t *testing.T) {
	t.Parallel()
	conn, reached, tok := startTestServer(t)
	debit := ledgerv1.File_tally_ledger_v1_ledger_proto.Services().Get(0).Methods().ByName("Debit")
	watch := ledgerv1.File_tally_ledger_v1_ledger_proto.Services().Get(0).Methods().ByName("WatchEvents")
	base := &ledgerv1.DebitRequest{OrgId: "acme", Amount: &moneypb.Money{CurrencyCode: "USD", Units: 1}, IdempotencyKey: "k-1",
		Metadata: map[string]string{"call": "42"}, Usage: &ledgerv1.Usage{ModelId: "m", Quantities: map[string]string{"requests": "1"}}}
	for _, c := range textchecktest.Cases(t, base) {
		err := textchecktest.Send(t.Context(), conn, debit, c.Wire, tok)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s in %s: %v", c.Bad.Name, c.Field, err)
		require.Contains(t, status.Convert(err).Message(), c.Field)
	}
	for _, c := range textchecktest.Cases(t, &ledgerv1.WatchEventsRequest{OrgId: "acme"}) {
		err := textchecktest.Send(t.Context(), conn, watch, c.Wire, tok)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s in %s: %v", c.Bad.Name, c.Field, err)
		require.Contains(t, status.Convert(err).Message(), c.Field)
	}
	require.Zero(t, reached.calls.Load(), "no bad request reaches a handler")

	wire, err := proto.Marshal(base)
	require.NoError(t, err)
	require.NoError(t, textchecktest.Send(t.Context(), conn, debit, wire, tok), "the valid request passes")
	wire, err = proto.Marshal(&ledgerv1.WatchEventsRequest{OrgId: "acme"})
	require.NoError(t, err)
	require.NoError(t, textchecktest.Send(t.Context(), conn, watch, wire, tok), "the valid stream passes")
	require.EqualValues(t, 2, reached.calls.Load())

	tests := []struct {
		name    string
		wire    []byte
		message string
	}{
		{"truncated message", []byte{0x0a, 0x05, 'a'}, "the request is not a valid protobuf message"},
		{"bad tag", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "the request is not a valid protobuf message"},
		{"forged marker", protoAppendMarker(), "the request is not a valid protobuf message"},
		{"unterminated varint", mustMarshal(t, &ledgerv1.DebitRequest{OrgId: "acme"}, 0x30, 0xff), "the request is not a valid protobuf message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := textchecktest.Send(t.Context(), conn, debit, tt.wire, tok)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			if tt.message != "" {
				require.Equal(t, tt.message, status.Convert(err).Message())
			}
		})
	}

	// Health and reflection need no token; their requests are held to the same floor.
	check := healthpb.File_grpc_health_v1_health_proto.Services().Get(0).Methods().ByName("Check")
	for _, c := range textchecktest.Cases(t, &healthpb.HealthCheckRequest{}) {
		err := textchecktest.Send(t.Context(), conn, check, c.Wire, "")
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s in %s: %v", c.Bad.Name, c.Field, err)
		require.Equal(t, "service "+problemOf(c.Bad.Name), status.Convert(err).Message())
	}
	_, err = healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
}

// problemOf is what the server says of each bad value in a field.
func problemOf(bad string) string {
	switch bad {
	case "NUL":
		return "contains a NUL character"
	case "invalid UTF-8", "encoded surrogate":
		return "is not valid UTF-8"
	case "right-to-left override":
		return "contains a bidirectional control character (U+202E)"
	case "left-to-right isolate":
		return "contains a bidirectional control character (U+2066)"
	case "right-to-left mark":
		return "contains a bidirectional control character (U+200F)"
	case "escape":
		return "contains a control character (U+001B)"
	case "carriage return":
		return "contains a control character (U+000D)"
	case "C1 control":
		return "contains a control character (U+0085)"
	}
	return "?"
}

// protoAppendMarker is a valid message carrying a forged decode-failure marker: refused like a
// message that did not decode.
func protoAppendMarker() []byte {
	m := &emptypb.Empty{}
	m.ProtoReflect().SetUnknown([]byte{0xfa, 0xff, 0xff, 0xff, 0x0f, 0x02, 0x01, 0x02})
	b, _ := proto.Marshal(m)
	return b
}

func memSlice(b []byte) mem.BufferSlice { return mem.BufferSlice{mem.SliceBuffer(b)} }

func mustMarshal(t *testing.T, m proto.Message, extra ...byte) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return append(b, extra...)
}

func TestCheckRequestNamesFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  proto.Message
		want string
	}{
		{"valid", &pricingv1.SetModelPriceRequest{ModelId: "m", Modality: pricingv1.Modality_MODALITY_LLM, Reason: "line 1\nline 2\tend"}, ""},
		{"unknown enum", &pricingv1.SetModelPriceRequest{Modality: pricingv1.Modality(42)}, "modality is not a known value (42)"},
		{"list element", &pricingv1.SetModelPriceRequest{Dimensions: []*pricingv1.PriceDimension{{Unit: "ok"}, {Unit: "a\u202Eb"}}},
			"dimensions[1].unit contains a bidirectional control character (U+202E)"},
		{"nested money", &pricingv1.SetModelPriceRequest{Dimensions: []*pricingv1.PriceDimension{{Price: &moneypb.Money{CurrencyCode: "US\x00"}}}},
			"dimensions[0].price.currency_code contains a NUL character"},
		{"map key", &ledgerv1.DebitRequest{Metadata: map[string]string{"a\x01": "v"}}, "metadata key contains a control character (U+0001)"},
		{"map value", &ledgerv1.DebitRequest{Usage: &ledgerv1.Usage{Quantities: map[string]string{"k": "\u2067"}}},
			"usage.quantities value contains a bidirectional control character (U+2067)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkRequest(tt.req)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, codes.InvalidArgument, status.Code(err))
			require.Equal(t, tt.want, status.Convert(err).Message())
			details := status.Convert(err).Details()
			require.Len(t, details, 1, "google.rpc.BadRequest")
			br, ok := details[0].(*errdetails.BadRequest)
			require.True(t, ok)
			require.Len(t, br.GetFieldViolations(), 1)
			require.Equal(t, tt.want, br.GetFieldViolations()[0].GetDescription())
			require.True(t, strings.HasPrefix(tt.want, br.GetFieldViolations()[0].GetField()))
		})
	}
}

// TestInvalidUTF8PathNamesTheField decodes wire bytes with invalid UTF-8 at several depths.
func TestInvalidUTF8PathNamesTheField(t *testing.T) {
	t.Parallel()
	base := &pricingv1.SetModelPriceRequest{ModelId: "m", Dimensions: []*pricingv1.PriceDimension{{Unit: "a"}, {Unit: "b"}}}
	for _, c := range textchecktest.Cases(t, base) {
		if c.Bad.Name != "invalid UTF-8" {
			continue
		}
		m := &pricingv1.SetModelPriceRequest{}
		require.Error(t, proto.Unmarshal(c.Wire, m), c.Field)
		path := invalidUTF8Path(c.Wire, m.ProtoReflect().Descriptor(), 0)
		require.Equal(t, c.Field, fieldPath(m.ProtoReflect().Descriptor(), path))
	}
}

// FuzzRequestCodec decodes arbitrary bytes as a request: never a panic, never an error (a bad
// request is marked instead), and a marked request is always refused.
func FuzzRequestCodec(f *testing.F) {
	for _, m := range []proto.Message{
		&ledgerv1.DebitRequest{OrgId: "acme", Metadata: map[string]string{"a": "b"}, Usage: &ledgerv1.Usage{ModelId: "m"}},
		&pricingv1.SetModelPriceRequest{Dimensions: []*pricingv1.PriceDimension{{Unit: "u"}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
		f.Add(append(b[:len(b)-1:len(b)-1], 0xff))
	}
	f.Add([]byte{0x0a, 0x02, 0xff, 0xfe})
	codec := newRequestCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []proto.Message{&ledgerv1.DebitRequest{}, &pricingv1.SetModelPriceRequest{}} {
			wellFormed := proto.Unmarshal(b, proto.Clone(m)) == nil
			if err := codec.Unmarshal(memSlice(b), m); err != nil {
				t.Fatalf("codec returned an error: %v", err)
			}
			err := checkRequest(m)
			if !wellFormed && status.Code(err) != codes.InvalidArgument {
				t.Fatalf("a request that does not decode was not refused: %v", err)
			}
			if err != nil && status.Code(err) != codes.InvalidArgument {
				t.Fatalf("refusal is %v", err)
			}
		}
	})
}

// BenchmarkCheckRequest is the floor check of every request (every message of a stream) on a
// valid debit: nested message and map included, it builds no field names (12 allocations when it
// did, 8 since).
func BenchmarkCheckRequest(b *testing.B) {
	req := &ledgerv1.DebitRequest{OrgId: "org-1", IdempotencyKey: "k-1", Description: "call",
		Amount: &moneypb.Money{CurrencyCode: "USD", Units: 1}, Metadata: map[string]string{"model": "llama"}}
	require.NoError(b, checkRequest(req))
	b.ReportAllocs()
	for b.Loop() {
		_ = checkRequest(req)
	}
}
