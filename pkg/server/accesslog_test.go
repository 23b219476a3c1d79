package server_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/pkg/telemetry/telemetrytest"
	"github.com/tallyhq/tally/pkg/testenv"
)

const accessSecret = "access-log-test-secret-of-32-bytes!"

// accessServer serves admittedPricing (members admitted to ListModelPrices) with tel, logging
// JSON lines into logs the way server.NewLogger does.
func accessServer(t *testing.T, tel *telemetry.Telemetry) (addr string, logs *testenv.Buffer) {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte(accessSecret))
	require.NoError(t, err)
	logs = &testenv.Buffer{}
	logger := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(logs, nil)))
	s := serveAdmittedPricing(t, server.Config{Name: "access-test", Logger: logger, Verifier: v, Telemetry: tel})
	return s.addr, logs
}

func mint(t *testing.T, c auth.Claims) string {
	t.Helper()
	tok, err := auth.Mint([]byte(accessSecret), c, time.Hour)
	require.NoError(t, err)
	return tok
}

// accessLines returns the access-log lines in logs, decoded.
func accessLines(t *testing.T, logs string, message string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), sc.Text())
		if line["msg"] == message {
			out = append(out, line)
		}
	}
	return out
}

// TestAccessLog makes one call per case and requires exactly one access-log line for it, naming
// the method, the code the caller got, the caller's kind (also when the policy refused it) and
// the request id, and never the token.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	addr, logs := accessServer(t, nil)
	conn, err := rpcclient.Dial(addr, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	client := pricingv1.NewPricingServiceClient(conn)
	cases := []struct {
		token  string
		code   codes.Code
		caller string
	}{
		{mint(t, auth.Claims{Subject: "u1", OrgID: "org-1", Roles: []auth.Role{auth.RoleMember}}), codes.OK, server.CallerMember},
		{"", codes.Unauthenticated, server.CallerAnonymous},
		{"not-a-jwt", codes.Unauthenticated, server.CallerAnonymous},
		{mint(t, auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}), codes.PermissionDenied, server.CallerOps},
		{mint(t, auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}}), codes.PermissionDenied, server.CallerService},
	}
	for i, tc := range cases {
		rid := "access-" + string(rune('a'+i))
		ctx := metadata.AppendToOutgoingContext(t.Context(), server.RequestIDHeader, rid, server.CallerRequestHeader, "1")
		if tc.token != "" {
			ctx = auth.OutgoingContext(ctx, tc.token)
		}
		var header metadata.MD
		_, err := client.ListModelPrices(ctx, &pricingv1.ListModelPricesRequest{}, grpc.Header(&header))
		require.Equal(t, tc.code, status.Code(err), "%v", err)
		// The verified kind is answered in the header (the gateway's access log reads it); no
		// kind when no token was verified.
		want := []string{tc.caller}
		if tc.caller == server.CallerAnonymous {
			want = nil
		}
		require.Equal(t, want, header.Get(server.CallerHeader), "case %d", i)
	}
	// A caller that does not ask (a model backend) gets no such header.
	var header metadata.MD
	_, err = client.ListModelPrices(auth.OutgoingContext(t.Context(), cases[0].token), &pricingv1.ListModelPricesRequest{}, grpc.Header(&header))
	require.NoError(t, err)
	require.Empty(t, header.Get(server.CallerHeader), "answered to a caller that did not ask")
	// The line is written when the call ends, before its answer is sent.
	lines := accessLines(t, logs.String(), server.AccessLogMessage)
	require.Len(t, lines, len(cases)+1)
	for i, tc := range cases {
		line := lines[i]
		require.Equal(t, "INFO", line["level"])
		require.Equal(t, pricingv1.PricingService_ListModelPrices_FullMethodName, line["method"])
		require.Equal(t, tc.code.String(), line["code"])
		require.Equal(t, tc.caller, line["caller"], "case %d", i)
		require.Equal(t, "access-"+string(rune('a'+i)), line["request_id"])
		require.Greater(t, line["duration"], float64(0))
		require.NotContains(t, line, "trace_id", "no trace without telemetry")
	}
	for _, tc := range cases {
		if tc.token != "" {
			require.NotContains(t, logs.String(), tc.token, "a token in the logs")
		}
	}
}

// TestTracedCall calls a traced server through a traced client and requires, at an in-test OTLP
// collector, the client span and the server span in one trace, the server's a child of the
// client's; and the server's log lines for the call carrying that trace id and span id.
func TestTracedCall(t *testing.T) {
	collector := telemetrytest.Start(t)
	collector.Setenv(t)
	serverTel, err := telemetry.Start(t.Context(), "traced-server")
	require.NoError(t, err)
	require.True(t, serverTel.Enabled())
	clientTel, err := telemetry.Start(t.Context(), "traced-client")
	require.NoError(t, err)
	addr, logs := accessServer(t, serverTel)
	conn, err := rpcclient.Dial(addr, mint(t, auth.Claims{Subject: "u1", OrgID: "org-1", Roles: []auth.Role{auth.RoleMember}}), clientTel.DialOption())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = pricingv1.NewPricingServiceClient(conn).ListModelPrices(t.Context(), &pricingv1.ListModelPricesRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.NoError(t, clientTel.Shutdown(t.Context()), "flushes")
	require.NoError(t, serverTel.Shutdown(t.Context()), "flushes")

	var client, srv telemetrytest.Span
	for _, s := range collector.Spans() {
		switch s.Service {
		case "traced-client":
			client = s
		case "traced-server":
			srv = s
		}
	}
	require.Equal(t, "tally.pricing.v1.PricingService/ListModelPrices", client.Name)
	require.Equal(t, client.Name, srv.Name)
	require.Equal(t, client.TraceID, srv.TraceID, "one trace")
	require.Equal(t, client.SpanID, srv.ParentSpanID, "the server's span is the client's child")
	require.Empty(t, client.ParentSpanID, "the client's span is the root")

	lines := accessLines(t, logs.String(), server.AccessLogMessage)
	require.Len(t, lines, 1)
	require.Equal(t, srv.TraceID, lines[0]["trace_id"])
	require.Equal(t, srv.SpanID, lines[0]["span_id"])
}

// TestSampledAccessLog calls a server whose access log samples ListModelPrices, over gRPC, and
// requires the lines the sampling promises: one OK call in Every (marked sample_every), every
// refused call, and every call once each is slow.
func TestSampledAccessLog(t *testing.T) {
	t.Parallel()
	v, err := auth.NewHS256Verifier([]byte(accessSecret))
	require.NoError(t, err)
	member := mint(t, auth.Claims{Subject: "u1", OrgID: "org-1", Roles: []auth.Role{auth.RoleMember}})
	method := pricingv1.PricingService_ListModelPrices_FullMethodName
	// line is a logged line's code and sample_every (0: absent).
	type line struct {
		code  codes.Code
		every float64
	}
	cases := []struct {
		name string
		slow time.Duration
		want []line // in order
	}{
		{"fast calls sampled, refusals logged", 0, []line{{codes.OK, 3}, {codes.Unauthenticated, 0}, {codes.OK, 3}, {codes.Unauthenticated, 0}}},
		{"slow calls all logged", time.Nanosecond, []line{{codes.OK, 0}, {codes.OK, 0}, {codes.OK, 0}, {codes.Unauthenticated, 0}, {codes.OK, 0}, {codes.OK, 0}, {codes.OK, 0}, {codes.Unauthenticated, 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &testenv.Buffer{}
			logger := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(logs, nil)))
			s := serveAdmittedPricing(t, server.Config{Name: "sampled-test", Logger: logger, Verifier: v,
				AccessLog: server.AccessLogSampling{Methods: []string{method}, Every: 3, Slow: tc.slow}})
			client := pricingv1.NewPricingServiceClient(s.conn)
			// Twice: three OK calls (the first logged) and one without a token.
			for range 2 {
				for range 3 {
					_, err := client.ListModelPrices(auth.OutgoingContext(t.Context(), member), &pricingv1.ListModelPricesRequest{})
					require.NoError(t, err)
				}
				_, err := client.ListModelPrices(t.Context(), &pricingv1.ListModelPricesRequest{})
				require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
			}
			lines := accessLines(t, logs.String(), server.AccessLogMessage)
			require.Len(t, lines, len(tc.want))
			for i, w := range tc.want {
				require.Equal(t, w.code.String(), lines[i]["code"], "line %d", i)
				if w.every == 0 {
					require.NotContains(t, lines[i], "sample_every", "line %d", i)
				} else {
					require.Equal(t, w.every, lines[i]["sample_every"], "line %d", i)
				}
			}
		})
	}
}
