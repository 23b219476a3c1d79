package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
)

// fakeLedger answers GetBalance with Internal and records the request ids it saw; like every
// service behind pkg/server it echoes the id as a header.
type fakeLedger struct {
	ledgerv1.UnimplementedLedgerServiceServer
	mu  sync.Mutex
	ids []string
}

func (f *fakeLedger) GetBalance(ctx context.Context, _ *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.ids = append(f.ids, strings.Join(md.Get(requestIDKey), ","))
	f.mu.Unlock()
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDKey, strings.Join(md.Get(requestIDKey), ",")))
	return nil, status.Error(codes.Internal, "internal error")
}

// records counts the gateway's Error log lines.
type records struct {
	mu   sync.Mutex
	msgs []map[string]string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level < slog.LevelError {
		return nil
	}
	attrs := map[string]string{"msg": rec.Message}
	rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	r.mu.Lock()
	r.msgs = append(r.msgs, attrs)
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) lines() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]string(nil), r.msgs...)
}

func startFakeGateway(t *testing.T, ledgerAddr string) (*httptest.Server, *records) {
	t.Helper()
	logs := &records{}
	h, closeConns, err := New(t.Context(), Config{LedgerAddr: ledgerAddr, Logger: slog.New(logs)})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, logs
}

func getBalance(t *testing.T, base string, ids ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/orgs/acme/balance", nil)
	require.NoError(t, err)
	for _, id := range ids {
		req.Header.Add(RequestIDHeader, id)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp
}

// T10 (gateway side): the id is echoed, forwarded to the service, and a service's Internal is not
// logged again by the gateway; a failure the gateway made is logged once with the id.
func TestRequestIDForwardedAndEchoed(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fake := &fakeLedger{}
	gs := grpc.NewServer()
	ledgerv1.RegisterLedgerServiceServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	gw, logs := startFakeGateway(t, lis.Addr().String())

	resp := getBalance(t, gw.URL, "req-1.A_b")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Equal(t, []string{"req-1.A_b"}, resp.Header.Values(RequestIDHeader), "echoed once")

	for _, bad := range [][]string{nil, {"has space"}, {strings.Repeat("a", 65)}, {"a", "b"}} {
		resp := getBalance(t, gw.URL, bad...)
		got := resp.Header.Values(RequestIDHeader)
		require.Len(t, got, 1, "%q", bad)
		assert.True(t, validRequestID(got[0]), "%q → %q", bad, got[0])
		assert.Len(t, got[0], 32, "a minted id")
	}
	fake.mu.Lock()
	seen := append([]string(nil), fake.ids...)
	fake.mu.Unlock()
	require.Len(t, seen, 5)
	assert.Equal(t, "req-1.A_b", seen[0], "forwarded to the service")
	for _, id := range seen {
		assert.True(t, validRequestID(id), "the service saw one valid id, got %q", id)
	}
	assert.Empty(t, logs.lines(), "the service logged its Internal; the gateway does not log it again")

	// A service that cannot be reached: the gateway's own 503, logged once with the id.
	require.NoError(t, lis.Close())
	gs.Stop()
	resp = getBalance(t, gw.URL, "down-1")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "down-1", resp.Header.Get(RequestIDHeader))
	lines := logs.lines()
	require.Len(t, lines, 1)
	assert.Equal(t, "down-1", lines[0]["request_id"])
}

func TestValidRequestID(t *testing.T) {
	t.Parallel()
	for id, ok := range map[string]bool{
		"a": true, "A-b_c.9": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a/b": false, "é": false, "a\n": false,
	} {
		assert.Equal(t, ok, validRequestID(id), "%q", id)
	}
}
