package gateway_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// boundedGateway is a gateway behind a real http.Server with the given limits, in front of a
// ledger; payments is an address nobody listens on, so its routes (the webhook among them) exist
// but every call to it fails Unavailable.
type boundedGateway struct {
	addr   string
	ledger *ledgertest.Ledger
	ops    ledgerv1.LedgerServiceClient
}

func startBoundedGateway(t *testing.T, l *ledgertest.Ledger, limits server.HTTPLimits) boundedGateway {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{LedgerAddr: l.Addr, PaymentsAddr: "127.0.0.1:1", Logger: quiet, Limits: limits})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := limits.Server(lis.Addr().String(), h, quiet)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return boundedGateway{addr: lis.Addr().String(), ledger: l, ops: l.Client(t, ledgertest.OpsToken(t))}
}

// requireNothingWritten checks that org has no transaction and a zero balance.
func (g boundedGateway) requireNothingWritten(t *testing.T, org string) {
	t.Helper()
	txs, err := g.ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: org})
	require.NoError(t, err)
	require.Empty(t, txs.GetTransactions(), "nothing is written")
	bal, err := g.ops.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: org})
	if err == nil {
		require.Zero(t, bal.GetBalance().GetUnits())
		require.Zero(t, bal.GetBalance().GetNanos())
	}
}

// jsonFiller is an endless body that keeps a JSON decoder reading: {"reason":"aaaa…
type jsonFiller struct{ started bool }

func (f *jsonFiller) Read(p []byte) (int, error) {
	n := 0
	if !f.started {
		n = copy(p, `{"idempotencyKey":"big","reason":"`)
		f.started = true
	}
	for i := n; i < len(p); i++ {
		p[i] = 'a'
	}
	return len(p), nil
}

// rawRequest sends method path with headers and then size bytes of body (a JSON prefix and
// filler; chunked when chunked), writing concurrently with reading the response as a browser
// does, and returns the response with its body read.
func rawRequest(t *testing.T, addr, method, path, token string, size int, chunked bool) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	require.NoError(t, conn.SetDeadline(time.Now().Add(60*time.Second)))
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n", method, path)
	if token != "" {
		fmt.Fprintf(&head, "Authorization: Bearer %s\r\n", token)
	}
	if chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", size)
	}
	go func() {
		if _, err := io.WriteString(conn, head.String()); err != nil {
			return
		}
		// Preallocated buffers: the writer must not add to the allocation measure.
		body := io.LimitReader(&jsonFiller{}, int64(size))
		buf := make([]byte, 64<<10)
		chunkHead, crlf := []byte(fmt.Sprintf("%x\r\n", len(buf))), []byte("\r\n")
		for {
			n, err := body.Read(buf)
			if n > 0 {
				var werr error
				if chunked {
					if n != len(buf) {
						chunkHead = []byte(fmt.Sprintf("%x\r\n", n))
					}
					_, werr = conn.Write(chunkHead)
				}
				if werr == nil {
					_, werr = conn.Write(buf[:n])
				}
				if werr == nil && chunked {
					_, werr = conn.Write(crlf)
				}
				if werr != nil {
					return // the server stopped reading: expected once it refused the body
				}
			}
			if err != nil {
				if chunked {
					_, _ = io.WriteString(conn, "0\r\n\r\n")
				}
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// allocated returns the bytes the process allocated while f ran (runtime.MemStats.TotalAlloc):
// whatever buffers a request body shows up here, garbage-collected or not.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAttack_OversizedBody sends 20 MB bodies to write routes, the webhook and a read route,
// declared and chunked: each is refused with 413 and a JSON error naming the limit while the body
// is read, nothing is written, and the gateway allocates a few MB at most for it. Not parallel:
// the allocation measure wants the process to itself.
func TestAttack_OversizedBody(t *testing.T) {
	l := ledgertest.Start(t, ledgertest.Options{})
	g := startBoundedGateway(t, l, server.HTTPLimits{})
	ops := ledgertest.OpsToken(t)
	member := ledgertest.Token(t, auth.Claims{Subject: "u1", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}})
	const twentyMB = 20 << 20
	// A generous regression bound, not a benchmark: buffering the body would allocate 20 MB+.
	const bound = 8 << 20
	tests := []struct {
		name, method, path, token string
		chunked                   bool
	}{
		{"credit declared", "POST", "/v1/orgs/acme/credits", ops, false},
		{"credit chunked", "POST", "/v1/orgs/acme/credits", ops, true},
		{"adjust chunked", "POST", "/v1/orgs/acme/adjustments", ops, true},
		{"checkout chunked", "POST", "/v1/orgs/acme/checkout-sessions", member, true},
		{"webhook declared", "POST", "/v1/webhooks/stripe", "", false},
		{"webhook chunked", "POST", "/v1/webhooks/stripe", "", true},
		{"balance with a body", "GET", "/v1/orgs/acme/balance", member, true},
		{"unknown route", "POST", "/v1/nowhere", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			var body []byte
			alloc := allocated(func() { resp, body = rawRequest(t, g.addr, tt.method, tt.path, tt.token, twentyMB, tt.chunked) })
			if tt.path == "/v1/nowhere" {
				require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s", body)
			} else {
				require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s", body)
				var e server.HTTPErrorBody
				require.NoError(t, json.Unmarshal(body, &e), "%s", body)
				require.Equal(t, "RESOURCE_EXHAUSTED", e.Code)
				require.NotEmpty(t, resp.Header.Get("X-Request-Id"), "a 413 carries the request id")
				require.Equal(t, "request body exceeds the limit of 1 MiB (TALLY_HTTP_MAX_BODY)", e.Message)
			}
			require.Less(t, alloc, uint64(bound), "a 20 MB body allocated %d MB in the gateway", alloc>>20)
			t.Logf("%s: %d KiB allocated for a 20 MiB body", tt.name, alloc>>10)
		})
	}
	g.requireNothingWritten(t, "acme")

	// The measure is able to fail: with the limit out of the way, the same body is buffered.
	t.Run("calibration without the limit", func(t *testing.T) {
		loose := startBoundedGateway(t, l, server.HTTPLimits{MaxBodyBytes: 64 << 20})
		var resp *http.Response
		alloc := allocated(func() { resp, _ = rawRequest(t, loose.addr, "POST", "/v1/orgs/acme/credits", ops, twentyMB, false) })
		require.Greater(t, alloc, uint64(twentyMB), "buffering a 20 MB body shows in the measure")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "the endless JSON string never ends")
	})
	g.requireNothingWritten(t, "acme")
}

// TestAttack_SlowBody: a client that sends its headers and then trickles the body is cut off by
// the read timeout (408, connection closed), and so is one trickling its headers; nothing is
// written and the gateway keeps serving.
func TestAttack_SlowBody(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	g := startBoundedGateway(t, l, server.HTTPLimits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond, WriteTimeout: 10 * time.Second})
	ops := ledgertest.OpsToken(t)
	credit := `{"amount":{"currencyCode":"USD","units":"5"},"idempotencyKey":"slow-1","reason":"` // …never finished
	tests := []struct {
		name, head string
		want       string // the status line prefix of the answer; "" when the server just hangs up
	}{
		{"slow body", "POST /v1/orgs/acme/credits HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + ops +
			"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + credit, "HTTP/1.1 408 "},
		{"slow chunked body", "POST /v1/orgs/acme/credits HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + ops +
			"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n186a0\r\n", len(credit), credit), "HTTP/1.1 408 "},
		{"slow headers", "POST /v1/orgs/acme/credits HTTP/1.1\r\nHost: gateway\r\nX-Slow: ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testenv.Trickle(t, g.addr, tt.head, 30*time.Second)
			if tt.want == "" {
				require.NotContains(t, got, "HTTP/1.1 2")
				return
			}
			require.True(t, strings.HasPrefix(got, tt.want), "answer: %q", got)
			_, jsonBody, ok := strings.Cut(got, "\r\n\r\n")
			require.True(t, ok)
			require.Contains(t, jsonBody, `"code":"DEADLINE_EXCEEDED"`)
			require.Contains(t, jsonBody, "TALLY_HTTP_READ_TIMEOUT")
		})
	}
	g.requireNothingWritten(t, "acme")
	// A prompt client is served as usual.
	req, err := http.NewRequestWithContext(t.Context(), "POST", "http://"+g.addr+"/v1/orgs/acme/credits",
		strings.NewReader(`{"amount":{"currencyCode":"USD","units":"5"},"idempotencyKey":"prompt-1","reason":"grant"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+ops)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestAttack_OversizedMessage sends gRPC messages over the servers' limit straight to the ledger:
// ResourceExhausted (never Internal), nothing written, and the connection keeps working.
func TestAttack_OversizedMessage(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	conn, err := grpc.NewClient(l.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(auth.TokenCredentials(ledgertest.OpsToken(t))),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ledger := ledgerv1.NewLedgerServiceClient(conn)
	for _, size := range []int{server.MaxGRPCMessageBytes + 1, 20 << 20} {
		_, err := ledger.Credit(t.Context(), &ledgerv1.CreditRequest{
			OrgId: "acme", Amount: money.ToProto(5*money.NanosPerUnit, "USD"), IdempotencyKey: "huge", Reason: strings.Repeat("r", size),
		})
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	}
	g := boundedGateway{ledger: l, ops: ledger}
	g.requireNothingWritten(t, "acme")
	_, err = ledger.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "acme", Amount: money.ToProto(5*money.NanosPerUnit, "USD"), IdempotencyKey: "small", Reason: "grant"})
	require.NoError(t, err, "the same connection still carries ordinary calls")
}
