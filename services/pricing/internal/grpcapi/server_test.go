package grpcapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/catalog"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/pricing/internal/grpcapi"
)

func usd(t *testing.T, s string) *moneypb.Money {
	t.Helper()
	n, err := money.ParseDecimal(s)
	require.NoError(t, err)
	return money.ToProto(n, "USD")
}

func decimal(t *testing.T, m *moneypb.Money) string {
	t.Helper()
	v, err := money.FromProto(m)
	require.NoError(t, err)
	return v.Nanos.Display()
}

func requireCode(t *testing.T, want codes.Code, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, status.Code(err), "error: %v", err)
}

// setLLM changes the price of model id to in/out per 1M tokens.
func setLLM(t *testing.T, c pricingv1.PricingServiceClient, id, in, out string, eff *timestamppb.Timestamp, key string) *pricingv1.SetModelPriceResponse {
	t.Helper()
	resp, err := c.SetModelPrice(t.Context(), &pricingv1.SetModelPriceRequest{
		ModelId: id, DisplayName: "Llama 3.1 70B Instruct", Modality: pricingv1.Modality_MODALITY_LLM,
		Dimensions: []*pricingv1.PriceDimension{
			{Unit: "input_tokens", Price: usd(t, in), Per: 1_000_000},
			{Unit: "output_tokens", Price: usd(t, out), Per: 1_000_000},
		},
		EffectiveFrom: eff, Reason: "price review", IdempotencyKey: key,
	})
	require.NoError(t, err)
	return resp
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	t.Parallel()
	policy := grpcapi.Policy()
	desc := pricingv1.PricingService_ServiceDesc
	servertest.CheckPolicyCoversEveryMethod(t, desc, policy)
	methods := servertest.Methods(desc)
	for _, row := range policy.Table() {
		require.True(t, methods[row.Method], "rule for unknown method %s", row.Method)
		name := row.Method[strings.LastIndex(row.Method, "/")+1:]
		switch name {
		case "ListModelPrices", "GetModelPrice", "ListInstancePrices", "Quote":
			require.True(t, row.Public, name)
		case "SetModelPrice", "SetInstancePrice":
			require.Equal(t, []auth.Role{auth.RoleOps}, row.Roles, name)
			require.False(t, row.Public, name)
		case "WatchCatalog":
			require.ElementsMatch(t, []auth.Role{auth.RoleService, auth.RoleOps}, row.Roles, name)
			require.False(t, row.Public, name)
		default:
			t.Fatalf("method %s is not covered by this test", name)
		}
		require.False(t, row.OrgScoped, name)
	}
}

func TestSeedLoadsOnceAndSurvivesRestarts(t *testing.T) {
	t.Parallel()
	dbURL := testenv.PostgresURL(t)
	clk := newClock()
	first := startReplica(t, dbURL, clk, replicaOptions{})
	list, err := first.client(t, "").ListModelPrices(t.Context(), &pricingv1.ListModelPricesRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(1), list.GetCatalogVersion())
	require.Len(t, list.GetModels(), 8)
	for _, m := range list.GetModels() {
		require.Equal(t, time.Unix(0, 0).UTC(), m.GetEffectiveFrom().AsTime(), m.GetModelId())
		require.Equal(t, int64(1), m.GetCatalogVersion())
	}
	instances, err := first.client(t, "").ListInstancePrices(t.Context(), &pricingv1.ListInstancePricesRequest{})
	require.NoError(t, err)
	require.Len(t, instances.GetInstances(), 5)

	// A change, then a restart (a second replica starting on the same database): no reseed.
	setLLM(t, first.ops(t), "llama-3.1-70b-instruct", "0.50", "0.70", nil, "k1")
	again := startReplica(t, dbURL, clk, replicaOptions{})
	list, err = again.client(t, "").ListModelPrices(t.Context(), &pricingv1.ListModelPricesRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(2), list.GetCatalogVersion())
	require.Len(t, list.GetModels(), 8)

	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var seeds, versions int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pricing.price_changes WHERE kind = 'seed'").Scan(&seeds))
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pricing.model_price_versions").Scan(&versions))
	require.Equal(t, 1, seeds)
	require.Equal(t, 9, versions)

	// History is immutable, even for the database owner.
	_, err = conn.Exec(t.Context(), "UPDATE pricing.model_price_versions SET display_name = 'x'")
	require.ErrorContains(t, err, "immutable")
	_, err = conn.Exec(t.Context(), "DELETE FROM pricing.price_changes")
	require.ErrorContains(t, err, "immutable")
}

func TestSeedIsLoadedOnceByConcurrentReplicas(t *testing.T) {
	t.Parallel()
	dbURL := testenv.PostgresURL(t)
	clk := newClock()
	replicas := make(chan *replica, 3)
	for range 3 {
		go func() { replicas <- startReplica(t, dbURL, clk, replicaOptions{}) }()
	}
	for range 3 {
		r := <-replicas
		require.Equal(t, int64(1), r.app.Catalog().Version())
		require.Len(t, r.app.Catalog().ModelVersions(), 8)
	}
}

func TestPublicReadsNeedNoToken(t *testing.T) {
	t.Parallel()
	r := startReplica(t, testenv.PostgresURL(t), newClock(), replicaOptions{})
	anon := r.client(t, "")
	ctx := t.Context()

	got, err := anon.GetModelPrice(ctx, &pricingv1.GetModelPriceRequest{ModelId: "whisper-large-v3"})
	require.NoError(t, err)
	require.Equal(t, pricingv1.Modality_MODALITY_SPEECH_TO_TEXT, got.GetPrice().GetModality())
	require.Equal(t, "0.006", decimal(t, got.GetPrice().GetDimensions()[0].GetPrice()))
	require.Equal(t, int64(60), got.GetPrice().GetDimensions()[0].GetPer())

	inst, err := anon.ListInstancePrices(ctx, &pricingv1.ListInstancePricesRequest{})
	require.NoError(t, err)
	byID := map[string]*pricingv1.InstancePrice{}
	for _, in := range inst.GetInstances() {
		byID[in.GetInstanceTypeId()] = in
	}
	require.Equal(t, "6.50", decimal(t, byID["gpu-h100-80g"].GetHourlyPrice()))
	require.True(t, byID["gpu-a10g-small"].GetAvailable())
	require.False(t, byID["gpu-h100-80g-8x"].GetAvailable())

	q, err := anon.Quote(ctx, &pricingv1.QuoteRequest{ModelId: "flux-1-schnell", Usage: map[string]string{"images": "3"}})
	require.NoError(t, err)
	require.Equal(t, "0.009", decimal(t, q.GetTotal()))

	// The REST routes, through a grpc-gateway mux as the gateway mounts them, with no token.
	mux := runtime.NewServeMux()
	require.NoError(t, pricingv1.RegisterPricingServiceHandlerFromEndpoint(ctx, mux, r.addr,
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}))
	web := httptest.NewServer(mux)
	defer web.Close()
	for _, path := range []string{"/v1/pricing/models", "/v1/pricing/models/tts-standard", "/v1/pricing/instances"} {
		resp, err := http.Get(web.URL + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		var fields map[string]any
		require.NoError(t, json.Unmarshal(body, &fields))
		require.Contains(t, fields, "catalogVersion", "%s exposes the catalog version for ETags", path)
	}
	resp, err := http.Post(web.URL+"/v1/pricing/quote", "application/json",
		strings.NewReader(`{"modelId":"tts-standard","usage":{"characters":"1001"}}`))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var quote pricingv1.QuoteResponse
	require.NoError(t, protojson.Unmarshal(body, &quote))
	require.Equal(t, "0.015015", decimal(t, quote.GetTotal()))

	resp, err = http.Get(web.URL + "/v1/pricing/models/no-such-model")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestChangesAreOpsOnly(t *testing.T) {
	t.Parallel()
	r := startReplica(t, testenv.PostgresURL(t), newClock(), replicaOptions{})
	modelReq := &pricingv1.SetModelPriceRequest{
		ModelId: "m", DisplayName: "M", Modality: pricingv1.Modality_MODALITY_LLM,
		Dimensions: []*pricingv1.PriceDimension{{Unit: "input_tokens", Price: usd(t, "1"), Per: 1_000_000}},
		Reason:     "test", IdempotencyKey: "k",
	}
	instReq := &pricingv1.SetInstancePriceRequest{
		InstanceTypeId: "cpu-2x8", Description: "2 vCPU", Vcpu: 2, MemoryGib: 8, HourlyPrice: usd(t, "0.10"),
		Reason: "test", IdempotencyKey: "k2",
	}
	callers := []struct {
		name   string
		client pricingv1.PricingServiceClient
		want   codes.Code
	}{
		{"no token", r.client(t, ""), codes.Unauthenticated},
		{"bad token", r.client(t, "not-a-jwt"), codes.Unauthenticated},
		{"member", r.client(t, token(t, "user:bob", auth.RoleMember)), codes.PermissionDenied},
		{"org admin", r.client(t, token(t, "user:carol", auth.RoleAdmin)), codes.PermissionDenied},
		{"service", r.service(t, "ledger"), codes.PermissionDenied},
	}
	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.client.SetModelPrice(t.Context(), modelReq)
			requireCode(t, c.want, err)
			_, err = c.client.SetInstancePrice(t.Context(), instReq)
			requireCode(t, c.want, err)
		})
	}
	for _, c := range callers[:4] {
		t.Run(c.name+" watch", func(t *testing.T) {
			stream, err := c.client.WatchCatalog(t.Context(), &pricingv1.WatchCatalogRequest{})
			require.NoError(t, err)
			_, err = stream.Recv()
			requireCode(t, c.want, err)
		})
	}
	require.Equal(t, int64(1), r.app.Catalog().Version(), "nothing changed")

	ops := r.ops(t)
	resp, err := ops.SetModelPrice(t.Context(), modelReq)
	require.NoError(t, err)
	require.Equal(t, int64(2), resp.GetCatalogVersion())
	inst, err := ops.SetInstancePrice(t.Context(), instReq)
	require.NoError(t, err)
	require.True(t, inst.GetPrice().GetAvailable(), "available defaults to true")
	require.Equal(t, int64(3), inst.GetCatalogVersion())
}

func TestQuoteForAPastTimeUsesTheOldVersion(t *testing.T) {
	t.Parallel()
	clk := newClock()
	r := startReplica(t, testenv.PostgresURL(t), clk, replicaOptions{})
	anon, ops := r.client(t, ""), r.ops(t)
	usage := map[string]string{"input_tokens": "1200", "output_tokens": "350"}
	before := clk.Now()
	old, err := anon.Quote(t.Context(), &pricingv1.QuoteRequest{ModelId: "llama-3.1-70b-instruct", Usage: usage})
	require.NoError(t, err)
	require.Equal(t, "0.0009845", decimal(t, old.GetTotal())) // 1200×0.59/1M + 350×0.79/1M

	clk.Advance(time.Hour)
	changed := setLLM(t, ops, "llama-3.1-70b-instruct", "0.50", "0.70", nil, "cut-2026")
	require.Equal(t, clk.Now(), changed.GetPrice().GetEffectiveFrom().AsTime())

	now, err := anon.Quote(t.Context(), &pricingv1.QuoteRequest{ModelId: "llama-3.1-70b-instruct", Usage: usage})
	require.NoError(t, err)
	require.Equal(t, "0.000845", decimal(t, now.GetTotal()))
	require.Equal(t, changed.GetPrice().GetVersionId(), now.GetVersionId())

	past, err := anon.Quote(t.Context(), &pricingv1.QuoteRequest{ModelId: "llama-3.1-70b-instruct", Usage: usage, At: timestamppb.New(before)})
	require.NoError(t, err)
	require.Equal(t, old.GetVersionId(), past.GetVersionId())
	require.Equal(t, "0.0009845", decimal(t, past.GetTotal()))
	require.NotEqual(t, old.GetVersionId(), now.GetVersionId())
}

func TestScheduledPriceTakesEffectAtItsTime(t *testing.T) {
	t.Parallel()
	clk := newClock()
	r := startReplica(t, testenv.PostgresURL(t), clk, replicaOptions{})
	anon, ops := r.client(t, ""), r.ops(t)
	from := clk.Now().Add(2 * time.Hour)
	scheduled := setLLM(t, ops, "llama-3.1-70b-instruct", "0.40", "0.60", timestamppb.New(from), "sched-1")

	list, err := anon.ListModelPrices(t.Context(), &pricingv1.ListModelPricesRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetScheduled(), 1)
	require.Equal(t, scheduled.GetPrice().GetVersionId(), list.GetScheduled()[0].GetVersionId())
	require.Equal(t, from, list.GetScheduled()[0].GetEffectiveFrom().AsTime())
	got, err := anon.GetModelPrice(t.Context(), &pricingv1.GetModelPriceRequest{ModelId: "llama-3.1-70b-instruct"})
	require.NoError(t, err)
	require.Equal(t, "0.59", decimal(t, got.GetPrice().GetDimensions()[0].GetPrice()))
	require.Len(t, got.GetScheduled(), 1)

	usage := map[string]string{"input_tokens": "1000000"}
	quote := func(at time.Time) *pricingv1.QuoteResponse {
		q, err := anon.Quote(t.Context(), &pricingv1.QuoteRequest{ModelId: "llama-3.1-70b-instruct", Usage: usage, At: timestamppb.New(at)})
		require.NoError(t, err)
		return q
	}
	require.Equal(t, "0.59", decimal(t, quote(from.Add(-time.Microsecond)).GetTotal()))
	require.Equal(t, "0.40", decimal(t, quote(from).GetTotal()))

	// When the clock reaches it, the scheduled price is the current one.
	clk.Advance(2 * time.Hour)
	got, err = anon.GetModelPrice(t.Context(), &pricingv1.GetModelPriceRequest{ModelId: "llama-3.1-70b-instruct"})
	require.NoError(t, err)
	require.Equal(t, scheduled.GetPrice().GetVersionId(), got.GetPrice().GetVersionId())
	require.Empty(t, got.GetScheduled())
	list, err = anon.ListModelPrices(t.Context(), &pricingv1.ListModelPricesRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetScheduled())
}

func TestQuoteTotalsAreExact(t *testing.T) {
	t.Parallel()
	r := startReplica(t, testenv.PostgresURL(t), newClock(), replicaOptions{})
	anon := r.client(t, "")
	tests := []struct {
		model string
		usage map[string]string
		total string
		lines []string
	}{
		{"whisper-large-v3", map[string]string{"audio_seconds": "60"}, "0.006", []string{"0.006"}},
		{"whisper-large-v3", map[string]string{"audio_seconds": "12.5"}, "0.00125", []string{"0.00125"}},
		// 0.001 s × 0.006 / 60 = 0.0000001: exact. 0.0000001 s: 1e-11, rounded up to one nano.
		{"whisper-large-v3", map[string]string{"audio_seconds": "0.0000001"}, "0.000000001", []string{"0.000000001"}},
		{"tts-standard", map[string]string{"characters": "1001"}, "0.015015", []string{"0.015015"}},
		{"llama-3.1-8b-instruct", map[string]string{"input_tokens": "1", "output_tokens": "1"}, "0.00000036", []string{"0.00000018", "0.00000018"}},
		{"qwen2.5-72b-instruct", map[string]string{"input_tokens": "1000000", "output_tokens": "2000000"}, "3.30", []string{"0.90", "2.40"}},
		{"bge-large-en-v1.5", map[string]string{"input_tokens": "123456789"}, "1.975308624", []string{"1.975308624"}},
		{"flux-1-schnell", map[string]string{"images": "0"}, "0.00", []string{"0.00"}},
		// $0.05 per 1000 requests: 50,000,000 nanos / 1000 = 50,000 nanos a request.
		{"bge-reranker-v2-m3", map[string]string{"requests": "7"}, "0.00035", []string{"0.00035"}},
	}
	for _, tt := range tests {
		t.Run(tt.model+"/"+tt.total, func(t *testing.T) {
			q, err := anon.Quote(t.Context(), &pricingv1.QuoteRequest{ModelId: tt.model, Usage: tt.usage})
			require.NoError(t, err)
			require.Equal(t, tt.total, decimal(t, q.GetTotal()))
			require.Equal(t, "USD", q.GetTotal().GetCurrencyCode())
			var lines []string
			for _, l := range q.GetLines() {
				lines = append(lines, decimal(t, l.GetAmount()))
				require.Equal(t, tt.usage[l.GetUnit()], l.GetQuantity())
			}
			require.Equal(t, tt.lines, lines)
			require.NotEmpty(t, q.GetVersionId())
		})
	}
}

func TestBadQuotes(t *testing.T) {
	t.Parallel()
	clk := newClock()
	r := startReplica(t, testenv.PostgresURL(t), clk, replicaOptions{})
	anon, ops := r.client(t, ""), r.ops(t)
	// A model whose only price starts tomorrow.
	setLLM(t, ops, "next-llm", "1", "2", timestamppb.New(clk.Now().Add(24*time.Hour)), "next")
	ctx := t.Context()
	now := clk.Now()

	quotes := []struct {
		name string
		req  *pricingv1.QuoteRequest
		want codes.Code
	}{
		{"unknown model", &pricingv1.QuoteRequest{ModelId: "gpt-9", Usage: map[string]string{"input_tokens": "1"}}, codes.NotFound},
		{"no model", &pricingv1.QuoteRequest{Usage: map[string]string{"input_tokens": "1"}}, codes.InvalidArgument},
		{"unknown dimension", &pricingv1.QuoteRequest{ModelId: "tts-standard", Usage: map[string]string{"images": "1"}}, codes.InvalidArgument},
		{"negative quantity", &pricingv1.QuoteRequest{ModelId: "tts-standard", Usage: map[string]string{"characters": "-1"}}, codes.InvalidArgument},
		{"absurd quantity", &pricingv1.QuoteRequest{ModelId: "tts-standard", Usage: map[string]string{"characters": "1000000000000001"}}, codes.InvalidArgument},
		{"non-numeric quantity", &pricingv1.QuoteRequest{ModelId: "tts-standard", Usage: map[string]string{"characters": "lots"}}, codes.InvalidArgument},
		{"empty usage", &pricingv1.QuoteRequest{ModelId: "tts-standard"}, codes.InvalidArgument},
		{"more than a day ahead", &pricingv1.QuoteRequest{ModelId: "tts-standard", Usage: map[string]string{"characters": "1"},
			At: timestamppb.New(now.Add(25 * time.Hour))}, codes.InvalidArgument},
		{"invalid timestamp", &pricingv1.QuoteRequest{ModelId: "tts-standard", Usage: map[string]string{"characters": "1"},
			At: &timestamppb.Timestamp{Seconds: 1, Nanos: -5}}, codes.InvalidArgument},
		{"no price in force yet", &pricingv1.QuoteRequest{ModelId: "next-llm", Usage: map[string]string{"input_tokens": "1"}}, codes.FailedPrecondition},
		{"before the seed", &pricingv1.QuoteRequest{ModelId: "tts-standard", Usage: map[string]string{"characters": "1"},
			At: timestamppb.New(time.Unix(-1, 0))}, codes.FailedPrecondition},
	}
	for _, tt := range quotes {
		t.Run("quote "+tt.name, func(t *testing.T) {
			_, err := anon.Quote(ctx, tt.req)
			requireCode(t, tt.want, err)
		})
	}
	q, err := anon.Quote(ctx, &pricingv1.QuoteRequest{ModelId: "next-llm", Usage: map[string]string{"input_tokens": "1000000"},
		At: timestamppb.New(now.Add(24 * time.Hour))})
	require.NoError(t, err, "a day ahead is still allowed")
	require.Equal(t, "1.00", decimal(t, q.GetTotal()))

	_, err = anon.GetModelPrice(ctx, &pricingv1.GetModelPriceRequest{ModelId: "gpt-9"})
	requireCode(t, codes.NotFound, err)
	_, err = anon.GetModelPrice(ctx, &pricingv1.GetModelPriceRequest{ModelId: "next-llm"})
	requireCode(t, codes.FailedPrecondition, err)

}

func TestBadPriceChanges(t *testing.T) {
	t.Parallel()
	clk := newClock()
	r := startReplica(t, testenv.PostgresURL(t), clk, replicaOptions{})
	ops := r.ops(t)
	ctx := t.Context()
	now := clk.Now()

	good := func() *pricingv1.SetModelPriceRequest {
		return &pricingv1.SetModelPriceRequest{
			ModelId: "m1", DisplayName: "M1", Modality: pricingv1.Modality_MODALITY_EMBEDDING,
			Dimensions: []*pricingv1.PriceDimension{{Unit: "input_tokens", Price: usd(t, "0.02"), Per: 1_000_000}},
			Reason:     "launch", IdempotencyKey: "m1-launch",
		}
	}
	sets := []struct {
		name   string
		mutate func(*pricingv1.SetModelPriceRequest)
	}{
		{"no reason", func(r *pricingv1.SetModelPriceRequest) { r.Reason = "" }},
		{"no idempotency key", func(r *pricingv1.SetModelPriceRequest) { r.IdempotencyKey = "" }},
		{"effective in the past", func(r *pricingv1.SetModelPriceRequest) { r.EffectiveFrom = timestamppb.New(now.Add(-time.Hour)) }},
		{"bad model id", func(r *pricingv1.SetModelPriceRequest) { r.ModelId = "a/b" }},
		{"no modality", func(r *pricingv1.SetModelPriceRequest) { r.Modality = pricingv1.Modality_MODALITY_UNSPECIFIED }},
		{"no dimensions", func(r *pricingv1.SetModelPriceRequest) { r.Dimensions = nil }},
		{"no price", func(r *pricingv1.SetModelPriceRequest) { r.Dimensions[0].Price = nil }},
		{"no currency", func(r *pricingv1.SetModelPriceRequest) { r.Dimensions[0].Price.CurrencyCode = "" }},
		{"negative price", func(r *pricingv1.SetModelPriceRequest) { r.Dimensions[0].Price = usd(t, "-1") }},
		{"zero per", func(r *pricingv1.SetModelPriceRequest) { r.Dimensions[0].Per = 0 }},
		{"mixed currencies", func(r *pricingv1.SetModelPriceRequest) {
			r.Dimensions = append(r.Dimensions, &pricingv1.PriceDimension{Unit: "images", Per: 1,
				Price: &moneypb.Money{CurrencyCode: "EUR", Units: 1}})
		}},
	}
	for _, tt := range sets {
		t.Run("set "+tt.name, func(t *testing.T) {
			req := good()
			tt.mutate(req)
			_, err := ops.SetModelPrice(ctx, req)
			requireCode(t, codes.InvalidArgument, err)
		})
	}
	_, err := ops.SetInstancePrice(ctx, &pricingv1.SetInstancePriceRequest{InstanceTypeId: "x", Description: "x", Vcpu: 1, MemoryGib: 1,
		Reason: "r", IdempotencyKey: "i"})
	requireCode(t, codes.InvalidArgument, err) // no hourly price
	_, err = ops.SetInstancePrice(ctx, &pricingv1.SetInstancePriceRequest{InstanceTypeId: "x", Description: "x", Vcpu: 0, MemoryGib: 1,
		HourlyPrice: usd(t, "1"), Reason: "r", IdempotencyKey: "i"})
	requireCode(t, codes.InvalidArgument, err)

	// Idempotency: a retry returns the same version; another change under the key is refused.
	first, err := ops.SetModelPrice(ctx, good())
	require.NoError(t, err)
	clk.Advance(time.Minute)
	retry, err := ops.SetModelPrice(ctx, good())
	require.NoError(t, err)
	require.True(t, retry.GetReplayed())
	require.Equal(t, first.GetPrice().GetVersionId(), retry.GetPrice().GetVersionId())
	require.Equal(t, first.GetCatalogVersion(), retry.GetCatalogVersion())
	require.Equal(t, first.GetCatalogVersion(), r.app.Catalog().Version(), "a replay bumps nothing")
	other := good()
	other.Dimensions[0].Price = usd(t, "0.03")
	_, err = ops.SetModelPrice(ctx, other)
	requireCode(t, codes.AlreadyExists, err)
}

func TestChangesAreAudited(t *testing.T) {
	t.Parallel()
	dbURL := testenv.PostgresURL(t)
	r := startReplica(t, dbURL, newClock(), replicaOptions{})
	resp := setLLM(t, r.ops(t), "llama-3.1-70b-instruct", "0.55", "0.75", nil, "audit-1")
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var actor, reason, kind string
	var version int64
	require.NoError(t, conn.QueryRow(t.Context(),
		"SELECT actor, reason, kind, catalog_version FROM pricing.price_changes WHERE version_id = $1", resp.GetPrice().GetVersionId()).
		Scan(&actor, &reason, &kind, &version))
	require.Equal(t, "user:ops-alice", actor)
	require.Equal(t, "price review", reason)
	require.Equal(t, "model", kind)
	require.Equal(t, resp.GetCatalogVersion(), version)
}

func TestWatchCatalogDeliversChangesWithinASecond(t *testing.T) {
	t.Parallel()
	dbURL := testenv.PostgresURL(t)
	clk := newClock()
	writer := startReplica(t, dbURL, clk, replicaOptions{})
	// The watcher follows another replica, which learns of the change by polling PostgreSQL.
	follower := startReplica(t, dbURL, clk, replicaOptions{})
	w, err := catalog.NewWatcher(catalog.WatcherConfig{
		Client: follower.service(t, "ledger"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	require.NoError(t, w.Ready(t.Context()))
	require.Equal(t, int64(1), w.Current().Version())

	usage := catalog.Usage{"input_tokens": catalog.QuantityOf(1_000_000)}
	for i, price := range []string{"0.51", "0.52", "0.53"} {
		resp := setLLM(t, writer.ops(t), "llama-3.1-70b-instruct", price, "1", nil, "watch-"+price)
		require.Equal(t, int64(2+i), resp.GetCatalogVersion())
		require.Eventually(t, func() bool {
			c := w.Current()
			if c.Version() < resp.GetCatalogVersion() {
				return false
			}
			q, err := c.Quote("llama-3.1-70b-instruct", usage, clk.Now())
			return err == nil && q.VersionID == resp.GetPrice().GetVersionId() && q.Total.Display() == price
		}, time.Second, 10*time.Millisecond, "change %d reaches the watcher within a second", i)
	}
	// Every version is in the snapshot, so the watcher still prices the past.
	v, err := w.Current().Model("llama-3.1-70b-instruct", time.Unix(0, 0))
	require.NoError(t, err)
	require.Equal(t, int64(1), v.CatalogVersion)
}

func TestWatchCatalogSendsNothingNewToAnUpToDateCaller(t *testing.T) {
	t.Parallel()
	r := startReplica(t, testenv.PostgresURL(t), newClock(), replicaOptions{heartbeat: 20 * time.Millisecond})
	svc := r.service(t, "instances-metering")

	stream, err := svc.WatchCatalog(t.Context(), &pricingv1.WatchCatalogRequest{KnownCatalogVersion: 0})
	require.NoError(t, err)
	msg, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, int64(1), msg.GetSnapshot().GetCatalogVersion(), "an older caller gets the snapshot at once")
	require.Len(t, msg.GetSnapshot().GetModels(), 8)

	stream, err = svc.WatchCatalog(t.Context(), &pricingv1.WatchCatalogRequest{KnownCatalogVersion: 1})
	require.NoError(t, err)
	msg, err = stream.Recv()
	require.NoError(t, err)
	require.Nil(t, msg.GetSnapshot(), "an up-to-date caller gets heartbeats only")
	require.Equal(t, int64(1), msg.GetCatalogVersion())

	stream, err = svc.WatchCatalog(t.Context(), &pricingv1.WatchCatalogRequest{KnownCatalogVersion: -1})
	require.NoError(t, err)
	_, err = stream.Recv()
	requireCode(t, codes.InvalidArgument, err)
}
