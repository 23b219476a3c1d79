package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/pkg/telemetry/telemetrytest"
	"github.com/tallyhq/tally/services/gateway/internal/accesslog"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// jsonLogs is a JSON slog sink (with the trace and request ids, as server.NewLogger has them).
type jsonLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jsonLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jsonLogs) logger() *slog.Logger {
	return slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(l, nil)))
}

// lines returns the decoded lines whose message is msg.
func (l *jsonLogs) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), sc.Text())
		if line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

func (l *jsonLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestTraceSpansGatewayLedgerPostgres starts a ledger (with its PostgreSQL and Redis) and the
// gateway, both exporting over OTLP/gRPC to an in-test collector, makes one REST call (GET
// balance) and requires one trace: the gateway's HTTP span → its gRPC client span → the
// ledger's gRPC server span → the ledger's PostgreSQL spans, each the child of the one before;
// the access-log lines of both (one each) carrying that trace id and the caller's request id,
// which the gateway also answers; and no token in any log line.
func TestTraceSpansGatewayLedgerPostgres(t *testing.T) {
	collector := telemetrytest.Start(t)
	collector.Setenv(t)
	ledgerLogs, gatewayLogs := &jsonLogs{}, &jsonLogs{}
	l := ledgertest.Start(t, ledgertest.Options{Logger: ledgerLogs.logger()})
	tel, err := telemetry.Start(t.Context(), "gateway")
	require.NoError(t, err)
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{LedgerAddr: l.Addr, Logger: gatewayLogs.logger(), Telemetry: tel})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	member := ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/orgs/acme/balance", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+member)
	req.Header.Set("X-Request-Id", "trace-test-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "trace-test-1", resp.Header.Get("X-Request-Id"), "the caller's request id is answered")

	srv.Close()
	require.NoError(t, tel.Shutdown(t.Context()), "the gateway flushes its spans")
	l.Stop(t) // the ledger flushes its spans when it stops

	root := findSpan(t, collector.Spans(), "gateway", tracepb.Span_SPAN_KIND_SERVER, "GET /v1/orgs/{org_id}/balance")
	require.Empty(t, root.ParentSpanID, "the gateway starts the trace (a caller's traceparent is only a link)")
	spans := collector.Trace(root.TraceID)
	client := findSpan(t, spans, "gateway", tracepb.Span_SPAN_KIND_CLIENT, "tally.ledger.v1.LedgerService/GetBalance")
	require.Equal(t, root.SpanID, client.ParentSpanID, "the gateway's gRPC call is a child of its request")
	ledger := findSpan(t, spans, "ledger", tracepb.Span_SPAN_KIND_SERVER, "tally.ledger.v1.LedgerService/GetBalance")
	require.Equal(t, client.SpanID, ledger.ParentSpanID, "the ledger's span is a child of the gateway's call (traceparent)")
	var queries []telemetrytest.Span
	for _, s := range spans {
		if s.Service == "ledger" && strings.Contains(s.Scope, "otelpgx") && s.Attributes["db.query.text"] != "" {
			queries = append(queries, s)
		}
	}
	require.NotEmpty(t, queries, "the balance is read from PostgreSQL within the call: %+v", spans)
	for _, q := range queries {
		require.True(t, telemetrytest.Descends(spans, q, ledger.SpanID), "query span %q is not under the ledger's call", q.Name)
	}

	gw := gatewayLogs.lines(t, accesslog.Message)
	require.Len(t, gw, 1, gatewayLogs.String())
	require.Equal(t, "GET", gw[0]["method"])
	require.Equal(t, "/v1/orgs/{org_id}/balance", gw[0]["route"])
	require.EqualValues(t, http.StatusOK, gw[0]["status"])
	require.Equal(t, server.CallerMember, gw[0]["caller"])
	require.Equal(t, "trace-test-1", gw[0]["request_id"])
	require.Equal(t, root.TraceID, gw[0]["trace_id"])
	require.Equal(t, root.SpanID, gw[0]["span_id"])
	var lg []map[string]any
	for _, line := range ledgerLogs.lines(t, server.AccessLogMessage) {
		if line["method"] == "/tally.ledger.v1.LedgerService/GetBalance" {
			lg = append(lg, line)
		}
	}
	require.Len(t, lg, 1, ledgerLogs.String())
	require.Equal(t, "OK", lg[0]["code"])
	require.Equal(t, server.CallerMember, lg[0]["caller"])
	require.Equal(t, "trace-test-1", lg[0]["request_id"], "the request id reaches the ledger")
	require.Equal(t, root.TraceID, lg[0]["trace_id"])
	require.Equal(t, ledger.SpanID, lg[0]["span_id"])
	require.NotContains(t, gatewayLogs.String(), member)
	require.NotContains(t, ledgerLogs.String(), member)
}

// findSpan returns the one span of service of kind named name.
func findSpan(t *testing.T, spans []telemetrytest.Span, service string, kind tracepb.Span_SpanKind, name string) telemetrytest.Span {
	t.Helper()
	var found []telemetrytest.Span
	for _, s := range spans {
		if s.Service == service && s.Kind == kind && s.Name == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "%s %s span %q among %+v", service, kind, name, spans)
	return found[0]
}

// TestAccessLogCallerKind: the gateway's access log names the caller kind the ledger verified
// the token as (its x-tally-caller header), also when the policy refused the call; a token the
// ledger did not accept, however it claims to be, and a request no service answered are
// anonymous. The header never reaches the HTTP response.
func TestAccessLogCallerKind(t *testing.T) {
	t.Parallel()
	logs := &jsonLogs{}
	l := ledgertest.Start(t, ledgertest.Options{})
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{LedgerAddr: l.Addr, Logger: logs.logger()})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	forged, err := auth.Mint([]byte("not-the-ledger-secret-but-32-bytes-long"),
		auth.Claims{Subject: "u9", OrgID: "acme", Roles: []auth.Role{auth.RoleOps}}, time.Hour)
	require.NoError(t, err)
	cases := []struct {
		path, token string
		status      int
		caller      string
	}{
		{"/v1/orgs/acme/balance", ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}), http.StatusOK, server.CallerMember},
		{"/v1/orgs/other/balance", ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}), http.StatusForbidden, server.CallerMember},
		{"/v1/orgs/acme/balance", ledgertest.OpsToken(t), http.StatusOK, server.CallerOps},
		{"/v1/orgs/acme/balance", forged, http.StatusUnauthorized, server.CallerAnonymous},
		{"/v1/orgs/acme/balance", "", http.StatusUnauthorized, server.CallerAnonymous},
		{"/v1/no-such-route", ledgertest.OpsToken(t), http.StatusNotFound, server.CallerAnonymous},
	}
	for i, tc := range cases {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tc.path, nil)
		require.NoError(t, err)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		req.Header.Set("X-Request-Id", fmt.Sprintf("caller-%d", i))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, tc.status, resp.StatusCode, "case %d", i)
		for k := range resp.Header {
			require.False(t, strings.HasPrefix(k, "Grpc-") || strings.EqualFold(k, server.CallerHeader), "stray header %s", k)
		}
	}
	lines := logs.lines(t, accesslog.Message)
	byID := map[string]map[string]any{}
	for _, line := range lines {
		id, _ := line["request_id"].(string)
		byID[id] = line
	}
	for i, tc := range cases {
		line, ok := byID[fmt.Sprintf("caller-%d", i)]
		require.True(t, ok, "no access-log line for case %d: %s", i, logs.String())
		require.Equal(t, tc.caller, line["caller"], "case %d", i)
	}
}
