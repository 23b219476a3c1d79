package grpcapi

import (
	"testing"
	"time"

	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// writeRPC is one write RPC's request type and its mapping to a ledger.Request.
type writeRPC struct {
	name    string
	request func() proto.Message
	convert func(proto.Message) (*ledger.Request, error)
}

// rpc describes the write RPC name whose request T maps to a ledger.Request with convert.
func rpc[T proto.Message](name string, convert func(T, string) (*ledger.Request, error)) writeRPC {
	return writeRPC{
		name:    name,
		request: func() proto.Message { var zero T; return zero.ProtoReflect().New().Interface() },
		convert: func(m proto.Message) (*ledger.Request, error) { return convert(m.(T), "fuzz-caller") },
	}
}

func writeRPCs() []writeRPC {
	return []writeRPC{
		rpc("Credit", creditRequest),
		rpc("Debit", debitRequest),
		rpc("Adjust", adjustRequest),
		rpc("Reserve", reserveRequest),
		rpc("Capture", captureRequest),
		rpc("Release", releaseRequest),
	}
}

// validate is what the ledger checks of a write before it reaches the database: the mapping,
// the usage's shape (a usage debit is then priced; 1 nano stands in for its price) and Validate.
func validate(rpc writeRPC, m proto.Message) (*ledger.Request, error) {
	r, err := rpc.convert(m)
	if err != nil {
		return nil, err
	}
	if r.Usage != nil {
		if err := ledger.ValidateUsage(r.Usage); err != nil {
			return nil, err
		}
		r.Amount = 1
	}
	return r, r.Validate()
}

func TestWriteRequestValidation(t *testing.T) {
	t.Parallel()
	usd := &moneypb.Money{CurrencyCode: "USD", Units: 1}
	hold := "4b4c1d8e-6a0e-4f39-9d64-3f8f3f9a2f10"
	tests := []struct {
		rpc     string
		req     proto.Message
		wantErr string // "" when valid
	}{
		{"Credit", &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Reason: "welcome\ncredits", Source: ledgerv1.CreditSource_CREDIT_SOURCE_GRANT}, ""},
		{"Credit", &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Source: 9}, "source: unknown credit source 9"},
		{"Credit", &ledgerv1.CreditRequest{OrgId: "acme", Amount: &moneypb.Money{CurrencyCode: "usd", Units: 1}, IdempotencyKey: "k"}, `unknown currency "usd"`},
		{"Credit", &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Reason: "a\u202Eb"}, "reason contains a bidirectional control character (U+202E)"},
		{"Credit", &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Reference: "cs_\x00"}, "reference contains a NUL character"},
		{"Debit", &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "call 1"}, "idempotency_key must not contain spaces"},
		{"Debit", &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k\u200B"}, "idempotency_key contains an invisible format character (U+200B)"},
		{"Debit", &ledgerv1.DebitRequest{OrgId: "acmé", Amount: usd, IdempotencyKey: "k"}, "org_id may hold only printable ASCII characters (found U+00E9)"},
		{"Debit", &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Metadata: map[string]string{"a\tb": "v"}}, "metadata key contains a control character (U+0009)"},
		{"Debit", &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Metadata: map[string]string{"k": "Zürich 🚀"}}, ""},
		{"Debit", &ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k", Usage: &ledgerv1.Usage{ModelId: "m", Quantities: map[string]string{"requests": "1"},
			OccurredAt: &timestamppb.Timestamp{Seconds: 1, Nanos: 2_000_000_000}}}, "usage.occurred_at is not a valid time"},
		{"Debit", &ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k", Usage: &ledgerv1.Usage{ModelId: "m", Quantities: map[string]string{"requests": "1 "}}},
			"usage.quantities value must not contain spaces"},
		{"Reserve", &ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Ttl: durationpb.New(500 * time.Millisecond)}, "ttl must be between 1s and 24h0m0s"},
		{"Reserve", &ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Ttl: durationpb.New(25 * time.Hour)}, "ttl must be between 1s and 24h0m0s"},
		{"Reserve", &ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Ttl: &durationpb.Duration{Seconds: 1, Nanos: -1}}, "ttl is not a valid duration"},
		{"Reserve", &ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Ttl: durationpb.New(time.Second)}, ""},
		{"Capture", &ledgerv1.CaptureRequest{HoldId: hold, Amount: usd, IdempotencyKey: "k"}, ""},
		{"Capture", &ledgerv1.CaptureRequest{HoldId: "not-a-uuid-but-a-rather-long-string-of-text", Amount: usd, IdempotencyKey: "k"},
			`hold_id "not-a-uuid-but-a-rather-long-str"… is not a UUID`},
		{"Release", &ledgerv1.ReleaseRequest{HoldId: hold}, ""},
	}
	rpcs := map[string]writeRPC{}
	for _, r := range writeRPCs() {
		rpcs[r.name] = r
	}
	for _, tt := range tests {
		t.Run(tt.rpc+" "+tt.wantErr, func(t *testing.T) {
			t.Parallel()
			_, err := validate(rpcs[tt.rpc], tt.req)
			servertest.RequireRefusal(t, Errors, err, tt.wantErr)
		})
	}
}

// FuzzWriteRequests decodes arbitrary bytes as each write RPC's request and validates it as the
// ledger does: a refusal is always InvalidArgument, and whatever is accepted keeps the text rules
// the database and the logs rely on.
func FuzzWriteRequests(f *testing.F) {
	usd := &moneypb.Money{CurrencyCode: "USD", Units: 1}
	seeds := []proto.Message{
		&ledgerv1.CreditRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Reason: "r", Reference: "cs_1", Source: 2},
		&ledgerv1.DebitRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Description: "d", Metadata: map[string]string{"a": "b"}},
		&ledgerv1.AdjustRequest{OrgId: "acme", Amount: &moneypb.Money{CurrencyCode: "USD", Units: -1}, Reason: "fix", IdempotencyKey: "k"},
		&ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd, IdempotencyKey: "k", Ttl: durationpb.New(time.Minute)},
		&ledgerv1.CaptureRequest{HoldId: "4b4c1d8e-6a0e-4f39-9d64-3f8f3f9a2f10", Amount: usd, IdempotencyKey: "k"},
		&ledgerv1.ReleaseRequest{HoldId: "4b4c1d8e-6a0e-4f39-9d64-3f8f3f9a2f10"},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	debit, _ := proto.Marshal(&ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k", Usage: &ledgerv1.Usage{ModelId: "m", Quantities: map[string]string{"requests": "1"}}})
	f.Add(uint8(1), debit)
	rpcs := writeRPCs()
	f.Fuzz(func(t *testing.T, op uint8, wire []byte) {
		rpc := rpcs[int(op)%len(rpcs)]
		m := rpc.request()
		if proto.Unmarshal(wire, m) != nil {
			return // refused by the server's codec with InvalidArgument before it gets here
		}
		r, err := validate(rpc, m)
		if err != nil {
			if code := Errors.Code(err); code != codes.InvalidArgument {
				t.Fatalf("%s refused with %v: %v", rpc.name, code, err)
			}
			return
		}
		ids := map[string]string{"org_id": r.OrgID, "idempotency_key": r.IdempotencyKey, "hold_id": r.HoldID}
		texts := map[string]string{"description": r.Description, "reason": r.Reason, "reference": r.Reference}
		for k, v := range r.Metadata {
			ids["metadata key"], texts["metadata value"] = k, v
		}
		if r.Usage != nil {
			ids["usage.model_id"] = r.Usage.ModelID
			for k, v := range r.Usage.Quantities {
				ids["unit"], ids["quantity"] = k, v
			}
		}
		servertest.RequireCleanText(t, rpc.name, ids, texts)
		if r.Op == ledger.OpReserve && (r.TTL < ledger.MinHoldTTL || r.TTL > ledger.MaxHoldTTL) {
			t.Fatalf("reserve accepted with ttl %s", r.TTL)
		}
		if r.Op == ledger.OpCredit && r.Source != ledger.SourcePayment && r.Source != ledger.SourceGrant {
			t.Fatalf("credit accepted with source %q", r.Source)
		}
	})
}
