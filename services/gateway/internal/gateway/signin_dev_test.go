package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/gateway/internal/session"
	"github.com/tallyhq/tally/services/gateway/internal/signin"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// startDevGateway is a gateway with the development sign-in (or without, dev false) in front of
// a real ledger verifying the HS256 development tokens.
func startDevGateway(t *testing.T, dev bool) (*httptest.Server, *clock, *session.Codec) {
	t.Helper()
	l := ledgertest.Start(t, ledgertest.Options{})
	clk := &clock{}
	codec, err := session.NewDevCodec()
	require.NoError(t, err)
	codec = codec.WithClock(clk.now)
	store, err := session.NewStore(codec)
	require.NoError(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := signin.Config{Store: store, Logger: quiet}
	if dev {
		cfg.Dev = &signin.DevConfig{Secret: []byte(ledgertest.Secret)}
	}
	svc, err := signin.New(cfg)
	require.NoError(t, err)
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{LedgerAddr: l.Addr, Logger: quiet, SignIn: svc})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, clk, codec
}

// postForm posts a form from the gateway's own page (Origin and Sec-Fetch-Site as a browser).
func (b *browser) postForm(gw, path string, form url.Values, headers ...string) (*http.Response, []byte) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), "POST", gw+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", gw)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, raw
}

func TestDevSignIn(t *testing.T) {
	t.Parallel()
	gw, clk, codec := startDevGateway(t, true)

	b := newBrowser(t)
	resp, _ := b.do("GET", gw.URL+"/auth/login?return_to=/usage", "")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "/auth/dev?return_to=%2Fusage", resp.Header.Get("Location"))

	resp, page := b.do("GET", gw.URL+"/auth/dev?return_to=/usage", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	html := string(page)
	for _, want := range []string{`<html lang="en">`, "<title>", "<main>", "<h1>",
		"Sign in as Ada Lovelace", "member of acme", "Sign in as Grace Hopper", "admin of acme", "Sign in as Ops",
		`name="user" value="ada"`, `name="user" value="grace"`, `name="user" value="ops"`,
		`name="return_to" value="/usage"`, `<button type="submit"`, `method="post" action="/auth/dev"`} {
		require.Contains(t, html, want)
	}
	require.NotContains(t, html, "backend", "the model backend is not a person")

	resp, _ = b.postForm(gw.URL, "/auth/dev", url.Values{"user": {"ada"}, "return_to": {"/usage?days=7"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/usage?days=7", resp.Header.Get("Location"))
	code, me := b.me(gw.URL)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "user-ada", me["subject"])
	require.Equal(t, "acme", me["orgId"])
	require.Equal(t, []any{"member"}, me["roles"])

	resp, raw := b.do("GET", gw.URL+"/v1/orgs/acme/balance", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)

	// The 15-minute development token is renewed by the session.
	var before session.Session
	require.NoError(t, codec.Open(session.CookieName, b.cookie(gw.URL, session.CookieName), &before))
	require.Equal(t, signin.DevTokenTTL, before.TokenExpiry.Sub(before.TokenIssuedAt))
	clk.advance(11 * time.Minute)
	code, _ = b.me(gw.URL)
	require.Equal(t, http.StatusOK, code)
	var after session.Session
	require.NoError(t, codec.Open(session.CookieName, b.cookie(gw.URL, session.CookieName), &after))
	require.True(t, after.TokenExpiry.After(before.TokenExpiry))
	require.NotEqual(t, before.Token, after.Token)
	require.Equal(t, before.ID, after.ID)
}

func TestDevSignInRefusals(t *testing.T) {
	t.Parallel()
	gw, _, _ := startDevGateway(t, true)
	tests := []struct {
		name         string
		form         url.Values
		headers      []string
		want         int
		wantLocation string
	}{
		{"another host", url.Values{"user": {"grace"}, "return_to": {"//evil.test/x"}}, nil, http.StatusSeeOther, "/"},
		{"absolute URL", url.Values{"user": {"grace"}, "return_to": {"https://evil.test/"}}, nil, http.StatusSeeOther, "/"},
		{"backslash", url.Values{"user": {"grace"}, "return_to": {`/\evil.test`}}, nil, http.StatusSeeOther, "/"},
		{"no return_to", url.Values{"user": {"ops"}}, nil, http.StatusSeeOther, "/"},
		{"unknown user", url.Values{"user": {"mallory"}}, nil, http.StatusBadRequest, ""},
		{"the model backend", url.Values{"user": {"backend"}}, nil, http.StatusBadRequest, ""},
		{"foreign page", url.Values{"user": {"ada"}}, []string{"Origin", "https://evil.test", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t)
			resp, raw := b.postForm(gw.URL, "/auth/dev", tt.form, tt.headers...)
			require.Equal(t, tt.want, resp.StatusCode, "%s", raw)
			require.Equal(t, tt.wantLocation, resp.Header.Get("Location"))
			signedIn := b.cookie(gw.URL, session.CookieName) != ""
			require.Equal(t, tt.want == http.StatusSeeOther, signedIn)
		})
	}
}

func TestSignInOutsideDevelopment(t *testing.T) {
	t.Parallel()
	gw, _, _ := startDevGateway(t, false)
	b := newBrowser(t)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/auth/dev", http.StatusNotFound},
		{"POST", "/auth/dev", http.StatusNotFound},
		{"GET", "/auth/login", http.StatusNotFound},
		{"GET", "/auth/callback?code=x&state=y", http.StatusNotFound},
		{"GET", "/auth/me", http.StatusUnauthorized},
		{"POST", "/auth/logout", http.StatusNoContent},
		{"GET", "/auth/nope", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, raw := b.do(tt.method, gw.URL+tt.path, "")
			require.Equal(t, tt.want, resp.StatusCode, "%s", raw)
		})
	}
}

// TestSignInWrongMethod: the /auth/ routes answer a method they do not have like every other
// route of the gateway: 405 in the REST error shape with the route's methods in Allow; an unknown
// /auth/ path is a 404 in the same shape.
func TestSignInWrongMethod(t *testing.T) {
	t.Parallel()
	srv, _, _ := startDevGateway(t, true)
	tests := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"POST", "/auth/login", http.StatusMethodNotAllowed, "UNIMPLEMENTED", "GET, HEAD"},
		{"DELETE", "/auth/me", http.StatusMethodNotAllowed, "UNIMPLEMENTED", "GET, HEAD"},
		{"GET", "/auth/logout", http.StatusMethodNotAllowed, "UNIMPLEMENTED", "POST"},
		{"PUT", "/auth/dev", http.StatusMethodNotAllowed, "UNIMPLEMENTED", "GET, HEAD, POST"},
		{"GET", "/auth/nothing-here", http.StatusNotFound, "NOT_FOUND", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			require.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, tt.code, body["code"])
			require.Equal(t, tt.allow, resp.Header.Get("Allow"))
			require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
		})
	}
}
