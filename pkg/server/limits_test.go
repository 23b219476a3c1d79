package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1048576", 1 << 20, false},
		{"1MiB", 1 << 20, false},
		{"1 MiB", 1 << 20, false},
		{"512KiB", 512 << 10, false},
		{"100B", 100, false},
		{"0", 0, false},
		{"", 0, true},
		{"-1", 0, true},
		{"1.5MiB", 0, true},
		{"1MB", 0, true},
		{"99999999999999MiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := server.ParseByteSize(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, got, mustParse(t, server.FormatByteSize(got)), "FormatByteSize round-trips")
		})
	}
}

func mustParse(t *testing.T, s string) int64 {
	t.Helper()
	n, err := server.ParseByteSize(s)
	require.NoError(t, err)
	return n
}

func TestLoadHTTPLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    server.HTTPLimits
		wantErr string
	}{
		{name: "defaults", env: nil, want: server.DefaultHTTPLimits()},
		{name: "custom", env: map[string]string{
			"TALLY_HTTP_MAX_BODY": "256KiB", "TALLY_HTTP_READ_HEADER_TIMEOUT": "2s", "TALLY_HTTP_READ_TIMEOUT": "10s",
			"TALLY_HTTP_WRITE_TIMEOUT": "20s", "TALLY_HTTP_IDLE_TIMEOUT": "1m",
		}, want: server.HTTPLimits{MaxBodyBytes: 256 << 10, MaxHeaderBytes: server.DefaultMaxHeaderBytes, ReadHeaderTimeout: 2 * time.Second,
			ReadTimeout: 10 * time.Second, WriteTimeout: 20 * time.Second, IdleTimeout: time.Minute}},
		{name: "not a size", env: map[string]string{"TALLY_HTTP_MAX_BODY": "lots"}, wantErr: "TALLY_HTTP_MAX_BODY"},
		{name: "zero body", env: map[string]string{"TALLY_HTTP_MAX_BODY": "0"}, wantErr: "TALLY_HTTP_MAX_BODY"},
		{name: "over the gRPC limit", env: map[string]string{"TALLY_HTTP_MAX_BODY": "4MiB"}, wantErr: "gRPC message limit"},
		{name: "negative timeout", env: map[string]string{"TALLY_HTTP_READ_TIMEOUT": "-1s"}, wantErr: "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := config.FromMap(tt.env)
			got, err := server.LoadHTTPLimits(env)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.NoError(t, env.Err())
			require.Equal(t, tt.want, got)
		})
	}
	env := config.FromMap(map[string]string{"TALLY_HTTP_IDLE_TIMEOUT": "soon"})
	_, err := server.LoadHTTPLimits(env)
	require.NoError(t, err)
	require.ErrorContains(t, env.Err(), "TALLY_HTTP_IDLE_TIMEOUT", "a malformed duration is recorded in the Env like every other")
}

// bodyEcho reads the whole body and answers its length, or the limit error it ran into.
func bodyEcho(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	switch {
	case errors.Is(server.BodyError(r.Context()), server.ErrBodyTooLarge):
		server.WriteHTTPError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, "too large")
	case errors.Is(server.BodyError(r.Context()), server.ErrBodyTimeout):
		server.WriteHTTPError(w, http.StatusRequestTimeout, codes.DeadlineExceeded, "too slow")
	case err != nil:
		server.WriteHTTPError(w, http.StatusBadRequest, codes.InvalidArgument, "unreadable")
	default:
		_ = json.NewEncoder(w).Encode(map[string]int64{"read": n})
	}
}

// serve runs limits.Server(bodyEcho) on a loopback port until the test ends.
func serve(t *testing.T, limits server.HTTPLimits) string {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := limits.Server(lis.Addr().String(), http.HandlerFunc(bodyEcho), quiet)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().String()
}

// sendRaw writes head and then body (length bytes of 'a', in chunks, ignoring write errors once
// the server stops reading) on a new connection and returns the response read concurrently.
func sendRaw(t *testing.T, addr, head string, length int) *http.Response {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	go func() {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		chunk := []byte(strings.Repeat("a", 64<<10))
		for sent := 0; sent < length; sent += len(chunk) {
			if _, err := conn.Write(chunk[:min(len(chunk), length-sent)]); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestHTTPLimitsBody(t *testing.T) {
	t.Parallel()
	addr := serve(t, server.HTTPLimits{MaxBodyBytes: 1 << 20})
	const big = 20 << 20
	tests := []struct {
		name string
		head string
		size int
		want int
	}{
		{"declared too large", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 20971520\r\n\r\n", big, http.StatusRequestEntityTooLarge},
		{"chunked too large", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1400000\r\n", big, http.StatusRequestEntityTooLarge},
		{"at the limit", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n", 1 << 20, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := sendRaw(t, addr, tt.head, tt.size)
			defer func() { _ = resp.Body.Close() }()
			require.Equal(t, tt.want, resp.StatusCode)
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			if tt.want == http.StatusOK {
				require.EqualValues(t, tt.size, body["read"])
				return
			}
			require.Equal(t, "RESOURCE_EXHAUSTED", body["code"])
			require.Equal(t, []any{}, body["details"])
		})
	}
	// The early refusal names the limit and its setting, and carries the request id, the
	// caller's when acceptable.
	for _, tc := range []struct{ sent, want string }{{"", `^[0-9a-f]{32}$`}, {"X-Request-Id: rid-413\r\n", `^rid-413$`}} {
		resp := sendRaw(t, addr, "PUT /x HTTP/1.1\r\nHost: t\r\n"+tc.sent+"Content-Length: 2000000\r\n\r\n", 0)
		var body server.HTTPErrorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		_ = resp.Body.Close()
		require.Equal(t, "request body exceeds the limit of 1 MiB (TALLY_HTTP_MAX_BODY)", body.Message)
		require.Equal(t, "RESOURCE_EXHAUSTED", body.Code)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.Regexp(t, tc.want, resp.Header.Get("X-Request-Id"))
	}
}

// TestHTTPLimitsTwice: a handler wrapped twice (the gateway's own Handler inside Server's) answers
// with one request id, the one its context carries.
func TestHTTPLimitsTwice(t *testing.T) {
	t.Parallel()
	limits := server.HTTPLimits{MaxBodyBytes: 16}
	var inner string
	h := limits.Handler(limits.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = server.RequestID(r.Context())
		bodyEcho(w, r)
	})))
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", strings.NewReader(strings.Repeat("a", 17)))
	req.ContentLength = -1 // found too large while read, by the inner handler
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	require.Equal(t, inner, rec.Header().Get("X-Request-Id"))
	require.Regexp(t, `^[0-9a-f]{32}$`, inner)
}
func TestHTTPLimitsSlowClients(t *testing.T) {
	t.Parallel()
	addr := serve(t, server.HTTPLimits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond, WriteTimeout: 5 * time.Second})
	t.Run("slow body", func(t *testing.T) {
		got := testenv.Trickle(t, addr, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n", 20*time.Second)
		require.True(t, strings.HasPrefix(got, "HTTP/1.1 408 "), "the handler saw ErrBodyTimeout: %q", got)
	})
	t.Run("slow headers", func(t *testing.T) {
		got := testenv.Trickle(t, addr, "POST / HTTP/1.1\r\nHost: t\r\nX-Slow: ", 20*time.Second)
		require.NotContains(t, got, "200 OK")
	})
	// The server still answers a prompt client.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/", strings.NewReader("hello"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestHTTPLimitsHandlerDeadline(t *testing.T) {
	t.Parallel()
	var deadline time.Time
	h := server.HTTPLimits{WriteTimeout: 7 * time.Second}.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		deadline, _ = r.Context().Deadline()
	}))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	require.NoError(t, err)
	start := time.Now()
	h.ServeHTTP(discardResponse{}, req)
	require.WithinDuration(t, start.Add(7*time.Second), deadline, time.Second, "a handler's context ends with the write timeout")
}

type discardResponse struct{}

func (discardResponse) Header() http.Header         { return http.Header{} }
func (discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (discardResponse) WriteHeader(int)             {}

// startGRPC runs a bare server (health only) on a loopback port until the test ends.
func startGRPC(t *testing.T) string {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte("limits-test-secret-0123456789abcdef"))
	require.NoError(t, err)
	srv, err := server.New(server.Config{Name: "limits-test", Logger: quiet, Verifier: v,
		Policy: auth.Policy{healthpb.Health_Check_FullMethodName: {Public: true}}})
	require.NoError(t, err)
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return lis.Addr().String()
}

func TestGRPCMessageLimit(t *testing.T) {
	t.Parallel()
	addr := startGRPC(t)
	// The client is allowed to send anything: the server's limit is what is tested.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	hc := healthpb.NewHealthClient(conn)
	tests := []struct {
		name string
		size int
		want codes.Code
	}{
		{"under the limit", server.MaxGRPCMessageBytes - 1024, codes.NotFound}, // an unknown service name
		{"over the limit", server.MaxGRPCMessageBytes + 1, codes.ResourceExhausted},
		{"20 MB", 20 << 20, codes.ResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: strings.Repeat("s", tt.size)})
			require.Equal(t, tt.want, status.Code(err), "%v", err)
		})
	}
	// The connection survives a refused message.
	resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	// A client with the servers' limits refuses to send the oversized message at all.
	limited, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), server.ClientMessageLimits())
	require.NoError(t, err)
	t.Cleanup(func() { _ = limited.Close() })
	_, err = healthpb.NewHealthClient(limited).Check(t.Context(), &healthpb.HealthCheckRequest{Service: strings.Repeat("s", 20<<20)})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
}

// TestGRPCKeepaliveEnforcement floods a server with HTTP/2 pings and expects it to hang up with
// GOAWAY ENHANCE_YOUR_CALM ("too_many_pings") instead of answering them forever.
func TestGRPCKeepaliveEnforcement(t *testing.T) {
	t.Parallel()
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", startGRPC(t))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	_, err = io.WriteString(conn, http2.ClientPreface)
	require.NoError(t, err)
	fr := http2.NewFramer(conn, conn)
	require.NoError(t, fr.WriteSettings())
	for i := range 10 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may already have hung up
		}
	}
	for {
		f, err := fr.ReadFrame()
		require.NoError(t, err, "the connection ended without a GOAWAY")
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			require.Equal(t, http2.ErrCodeEnhanceYourCalm, ga.ErrCode)
			require.Equal(t, "too_many_pings", string(ga.DebugData()))
			return
		}
	}
}
