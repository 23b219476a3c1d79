package chaos

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFaultProxy(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"re_1","path":"`+r.URL.Path+`"}`)
	}))
	defer backend.Close()
	p, err := StartFaultProxy(backend.URL)
	require.NoError(t, err)
	defer p.Close()

	post := func(t *testing.T, timeout time.Duration) (int, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		form := url.Values{"amount": {"100"}, "metadata[tally_refund_id]": {"r1"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL()+"/v1/refunds", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Idempotency-Key", "refund:r1")
		// A fresh connection each time, as a client does after a failure.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}

	tests := []struct {
		mode    ProxyMode
		status  int
		body    string
		refused bool // connection refused
		failed  bool // no answer
	}{
		{mode: ProxyPass, status: http.StatusOK, body: `"path":"/v1/refunds"`},
		{mode: ProxyError, status: http.StatusInternalServerError, body: "api_error"},
		{mode: ProxyTimeout, failed: true},
		{mode: ProxyReset, failed: true},
		{mode: ProxyDown, refused: true},
		{mode: ProxyPass, status: http.StatusOK, body: "re_1"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			require.NoError(t, p.SetMode(tt.mode))
			require.Equal(t, tt.mode, p.Mode())
			before := len(p.Requests())
			status, body, err := post(t, 300*time.Millisecond)
			switch {
			case tt.refused:
				require.True(t, errors.Is(err, syscall.ECONNREFUSED), "connection refused, got %v", err)
				require.Len(t, p.Requests(), before, "nothing reached the proxy")
				return
			case tt.failed:
				require.Error(t, err)
			default:
				require.NoError(t, err)
				require.Equal(t, tt.status, status)
				require.Contains(t, body, tt.body)
			}
			require.Eventually(t, func() bool { return len(p.Requests()) == before+1 }, 5*time.Second, 5*time.Millisecond)
			got := p.Requests()[before]
			require.Equal(t, tt.mode, got.Mode)
			require.Equal(t, "/v1/refunds", got.Path)
			require.Equal(t, "refund:r1", got.IdempotencyKey)
			require.Equal(t, "r1", got.Form.Get("metadata[tally_refund_id]"))
		})
	}
}

func TestTCPProxy(t *testing.T) {
	t.Parallel()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	p, err := StartTCPProxy(echo.Addr().String())
	require.NoError(t, err)
	defer p.Close()

	roundTrip := func(t *testing.T, msg string) time.Duration {
		t.Helper()
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		start := time.Now()
		_, err = c.Write([]byte(msg))
		require.NoError(t, err)
		buf := make([]byte, len(msg))
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, msg, string(buf))
		return time.Since(start)
	}
	roundTrip(t, "COMMIT\x00")
	p.DelayReplies([]byte("COMMIT\x00"), 150*time.Millisecond)
	require.GreaterOrEqual(t, roundTrip(t, "C....COMMIT\x00"), 150*time.Millisecond, "a matching reply is held back")
	roundTrip(t, "SELECT 1\x00") // any other goes through
	p.DelayReplies(nil, 0)

	// A target that is gone drops the client's connection.
	require.NoError(t, echo.Close())
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}
