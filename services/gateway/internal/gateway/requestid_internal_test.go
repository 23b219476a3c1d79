package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/requestid"
)

const ridSecret = "request-id-test-secret-0123456789abcdef"

// failingLedger answers GetBalance with an error pkg/server maps to Internal (logged there, once,
// with the request id) and records the request ids it saw.
type failingLedger struct {
	ledgerv1.UnimplementedLedgerServiceServer
	mu  sync.Mutex
	ids []string
}

func (f *failingLedger) GetBalance(ctx context.Context, _ *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
	f.mu.Lock()
	f.ids = append(f.ids, server.RequestID(ctx))
	f.mu.Unlock()
	return nil, errors.New("the disk is on fire")
}

func (f *failingLedger) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ids...)
}

// startFailingLedger serves failingLedger behind pkg/server's interceptors; its logs are captured.
func startFailingLedger(t *testing.T) (addr string, l *failingLedger, logs *records, stop func()) {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte(ridSecret))
	require.NoError(t, err)
	logs = &records{}
	srv, err := server.New(server.Config{Name: "ledger", Logger: slog.New(logs), Verifier: v,
		Policy: auth.Policy{ledgerv1.LedgerService_GetBalance_FullMethodName: auth.Rule{Roles: []auth.Role{auth.RoleOps}}}})
	require.NoError(t, err)
	l = &failingLedger{}
	ledgerv1.RegisterLedgerServiceServer(srv.GRPC(), l)
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ledger stopped: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return lis.Addr().String(), l, logs, stop
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
	tok, err := auth.Mint([]byte(ridSecret), auth.Claims{Subject: "ops-1", Roles: []auth.Role{auth.RoleOps}}, time.Hour)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/orgs/acme/balance", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	for _, id := range ids {
		req.Header.Add(RequestIDHeader, id)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp
}

// T10: X-Request-Id is echoed and forwarded; the ledger logs its Internal once with that id and
// the gateway does not log it again; a failure the gateway made is logged once, with the id.
func TestRequestIDForwardedAndEchoed(t *testing.T) {
	t.Parallel()
	addr, ledger, ledgerLogs, stopLedger := startFailingLedger(t)
	gw, logs := startFakeGateway(t, addr)

	resp := getBalance(t, gw.URL, "req-1.A_b")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Equal(t, []string{"req-1.A_b"}, resp.Header.Values(RequestIDHeader), "echoed once")
	require.Equal(t, []string{"req-1.A_b"}, ledger.seen(), "forwarded to the service")
	errLines := ledgerLogs.lines()
	require.Len(t, errLines, 1, "the ledger logs its Internal once: %v", errLines)
	assert.Equal(t, "req-1.A_b", errLines[0]["request_id"], "the same id in the ledger's log line")
	assert.Empty(t, logs.lines(), "the gateway does not log the service's Internal again")

	for _, bad := range [][]string{nil, {"has space"}, {strings.Repeat("a", 65)}, {"a", "b"}} {
		resp := getBalance(t, gw.URL, bad...)
		got := resp.Header.Values(RequestIDHeader)
		require.Len(t, got, 1, "%q", bad)
		assert.True(t, requestid.Valid(got[0]), "%q → %q", bad, got[0])
		assert.NotContains(t, bad, got[0], "a minted id")
		seen := ledger.seen()
		assert.Equal(t, got[0], seen[len(seen)-1], "the service saw the minted id")
	}

	// A service that cannot be reached: the gateway's own 503, logged once with the id.
	stopLedger()
	resp = getBalance(t, gw.URL, "down-1")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "down-1", resp.Header.Get(RequestIDHeader))
	lines := logs.lines()
	require.Len(t, lines, 1)
	assert.Equal(t, "down-1", lines[0]["request_id"])
}
