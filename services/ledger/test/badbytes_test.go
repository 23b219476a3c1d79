package test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// TestAttack_BadBytes sends NUL, invalid UTF-8, bidi and control characters in every string field
// of every LedgerService request, each field found from the proto descriptors, to a real ledger:
// each is InvalidArgument naming the field, and no row is written.
func TestAttack_BadBytes(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	conn, err := rpcclient.Dial(l.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ops := ledgertest.OpsToken(t)
	backend := ledgertest.Token(t, auth.Claims{Subject: "model-backend-1", Roles: []auth.Role{auth.RoleService}})
	member := ledgertest.Token(t, memberClaims("acme"))
	unit := money.Nanos(money.NanosPerUnit)
	textchecktest.Attack(t, textchecktest.Target{
		Service: ledgerv1.File_tally_ledger_v1_ledger_proto.Services().ByName("LedgerService"),
		Conn:    conn,
		Rows:    ledgertest.RowCounts(l.DatabaseURL),
		Calls: map[string]textchecktest.Call{
			"GetBalance": {Token: member, Request: &ledgerv1.GetBalanceRequest{OrgId: "acme"}},
			"Credit": {Token: ops, Request: &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd(100 * unit), IdempotencyKey: "grant-1",
				Reason: "welcome credits", Reference: "ticket-7", Source: ledgerv1.CreditSource_CREDIT_SOURCE_GRANT}},
			"Debit": {Token: backend, Request: &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(unit), IdempotencyKey: "call-1",
				Description: "chat completion", Metadata: map[string]string{"request_id": "r-1"}}},
			"Adjust":           {Token: ops, Request: &ledgerv1.AdjustRequest{OrgId: "acme", Amount: usd(-unit), Reason: "correction", IdempotencyKey: "adj-1"}},
			"ListTransactions": {Token: member, Request: &ledgerv1.ListTransactionsRequest{OrgId: "acme", PageSize: 10}},
			"GetUsageSummary":  {Token: member, Request: &ledgerv1.GetUsageSummaryRequest{OrgId: "acme", Days: 7}},
			"Authorize":        {Token: backend, Request: &ledgerv1.AuthorizeRequest{OrgId: "acme", Amount: usd(unit)}},
			"Reserve": {Token: backend, Request: &ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd(unit), IdempotencyKey: "stream-1",
				Description: "streaming call"}},
			"Capture": {Token: backend, Request: &ledgerv1.CaptureRequest{HoldId: uuid.NewString(), Amount: usd(unit), IdempotencyKey: "cap-1",
				Description: "streaming call", Metadata: map[string]string{"request_id": "r-2"}}, BaseCode: codes.NotFound},
			"Release":     {Token: backend, Request: &ledgerv1.ReleaseRequest{HoldId: uuid.NewString()}, BaseCode: codes.NotFound},
			"WatchEvents": {Token: ops, Request: &ledgerv1.WatchEventsRequest{OrgId: "acme"}},
			"DebitStream": {Token: backend, Request: &ledgerv1.DebitStreamRequest{Debits: []*ledgerv1.StreamedDebit{{RequestId: 1,
				Debit: &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(unit), IdempotencyKey: "streamed-1",
					Description: "chat completion", Metadata: map[string]string{"request_id": "r-3"}}}}}},
			// One shard: a move to it is refused, having changed nothing.
			"MoveOrganization": {Token: ops, Request: &ledgerv1.MoveOrganizationRequest{OrgId: "acme", ToShard: "main", IdempotencyKey: "move-1"},
				BaseCode: codes.InvalidArgument},
			"GetSpendLimit":     {Token: member, Request: &ledgerv1.GetSpendLimitRequest{OrgId: "acme"}},
			"SetSpendLimit":     {Token: ops, Request: &ledgerv1.SetSpendLimitRequest{OrgId: "acme", Limit: usd(1000 * unit), AlertPercent: 80}},
			"ListProjectLimits": {Token: member, Request: &ledgerv1.ListProjectLimitsRequest{OrgId: "acme"}},
			"SetProjectLimit":   {Token: ops, Request: &ledgerv1.SetProjectLimitRequest{OrgId: "acme", Project: "alpha", Limit: usd(10 * unit)}},
		},
	})
	requireBalanced(t, l.DatabaseURL)
}

// TestAttack_BadBytesStrictParsing sends what the text floor lets through but the ledger's own
// rules refuse: identifiers with spaces or non-ASCII, lower-case currencies, unknown enum values,
// hold TTLs and usage times outside their bounds. Each is InvalidArgument and writes nothing.
func TestAttack_BadBytesStrictParsing(t *testing.T) {
	t.Parallel()
	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})
	l := ledgertest.Start(t, ledgertest.Options{PricingAddr: p.Addr})
	ops := l.Client(t, ledgertest.OpsToken(t))
	backend := l.Client(t, ledgertest.Token(t, auth.Claims{Subject: "model-backend-1", Roles: []auth.Role{auth.RoleService}}))
	credit(t, ops, "acme", 100*money.NanosPerUnit, "grant-1")
	rows := ledgertest.RowCounts(l.DatabaseURL)
	before := rows(t)
	for _, tt := range strictParsingCalls(t, ops, backend) {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			requireCode(t, err, codes.InvalidArgument)
			require.Contains(t, status.Convert(err).Message(), tt.want)
		})
	}
	require.Equal(t, before, rows(t), "refused requests wrote rows")
	_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k-ok", Usage: usageAt(time.Now().Add(-34 * 24 * time.Hour))})
	require.NoError(t, err, "usage within the window is charged")
}

// badCall is a call the ledger refuses with InvalidArgument, and the text of the refusal.
type badCall struct {
	name string
	call func() error
	want string
}

// usageAt is a usage of the test price list at at.
func usageAt(at time.Time) *ledgerv1.Usage {
	return &ledgerv1.Usage{ModelId: "llama-3.1-8b-instruct", Quantities: map[string]string{"input_tokens": "1000"}, OccurredAt: timestamppb.New(at)}
}

// strictParsingCalls are the calls of TestAttack_BadBytesStrictParsing.
func strictParsingCalls(t *testing.T, ops, backend ledgerv1.LedgerServiceClient) []badCall {
	unit := money.Nanos(money.NanosPerUnit)
	return []badCall{
		{"space in a key", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(unit), IdempotencyKey: "call 1"})
			return err
		}, "idempotency_key must not contain spaces"},
		{"no-break space in an org id", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "ac\u00a0me", Amount: usd(unit), IdempotencyKey: "k1"})
			return err
		}, "org_id may hold only printable ASCII characters (found U+00A0)"},
		{"look-alike letters in a metadata key", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(unit), IdempotencyKey: "k2", Metadata: map[string]string{"requеst_id": "1"}})
			return err
		}, "metadata key may hold only printable ASCII characters (found U+0435)"},
		{"tab in a model id", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k3", Usage: &ledgerv1.Usage{ModelId: "llama\t3", Quantities: map[string]string{"requests": "1"}}})
			return err
		}, "usage.model_id contains a control character (U+0009)"},
		{"lower-case currency", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: &moneypb.Money{CurrencyCode: "usd", Units: 1}, IdempotencyKey: "k4"})
			return err
		}, `unknown currency "usd"`},
		{"unknown credit source", func() error {
			_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd(unit), IdempotencyKey: "k5", Source: 7})
			return err
		}, "source is not a known value (7)"},
		{"hold ttl below a second", func() error {
			_, err := backend.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd(unit), IdempotencyKey: "k6", Ttl: durationpb.New(10 * time.Millisecond)})
			return err
		}, "ttl must be between 1s and 24h0m0s"},
		{"hold ttl above a day", func() error {
			_, err := backend.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd(unit), IdempotencyKey: "k7", Ttl: durationpb.New(25 * time.Hour)})
			return err
		}, "ttl must be between 1s and 24h0m0s"},
		{"usage from 36 days ago", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k8", Usage: usageAt(time.Now().Add(-36 * 24 * time.Hour))})
			return err
		}, "usage.occurred_at lies more than 35 days in the past"},
		{"usage two days ahead", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k9", Usage: usageAt(time.Now().Add(48 * time.Hour))})
			return err
		}, "usage time too far in the future"},
		{"usage at an invalid time", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k10",
				Usage: &ledgerv1.Usage{ModelId: "m", Quantities: map[string]string{"requests": "1"}, OccurredAt: &timestamppb.Timestamp{Seconds: 253402300800}}})
			return err
		}, "usage.occurred_at is not a valid time"},
		{"quantity in exponent notation", func() error {
			_, err := backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", IdempotencyKey: "k11",
				Usage: &ledgerv1.Usage{ModelId: "llama-3.1-8b-instruct", Quantities: map[string]string{"input_tokens": "1e3"}}})
			return err
		}, `invalid quantity "1e3"`},
		{"long hold id echoed only in part", func() error {
			_, err := backend.Release(t.Context(), &ledgerv1.ReleaseRequest{HoldId: strings.Repeat("x", 100)})
			return err
		}, `hold_id "` + strings.Repeat("x", 32) + `"… is not a UUID`},
	}
}
