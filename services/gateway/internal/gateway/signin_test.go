package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/auth/oidcdev"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/gateway/internal/oidc"
	"github.com/tallyhq/tally/services/gateway/internal/session"
	"github.com/tallyhq/tally/services/gateway/internal/signin"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// clock is the gateway's time: real time plus an offset the test moves forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) reset()                  { c.offset.Store(0) }

// oidcStack is a real OpenID Connect provider (mockoidc), a ledger verifying its tokens through
// its JWKS like production services do, and a gateway signing people in against the provider.
type oidcStack struct {
	gw     *httptest.Server
	idp    *oidcdev.Provider
	codec  *session.Codec
	clock  *clock
	ledger *ledgertest.Ledger
}

func startOIDCStack(t *testing.T) oidcStack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	idp, err := oidcdev.Start(ln, auth.DevPeople())
	require.NoError(t, err)
	t.Cleanup(func() { _ = idp.Shutdown() })

	l := ledgertest.Start(t, ledgertest.Options{Auth: &server.AuthConfig{
		Development: true, // the provider's JWKS is plain http on the loopback
		JWKSURL:     idp.JWKSEndpoint(), Issuer: idp.Issuer(), Audience: oidcdev.ClientID,
	}})

	var handler atomic.Value
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)

	clk := &clock{}
	key, err := session.RandomToken()
	require.NoError(t, err)
	codec, err := session.NewCodec([]byte(key))
	require.NoError(t, err)
	codec = codec.WithClock(clk.now)
	store, err := session.NewStore(codec)
	require.NoError(t, err)
	provider, err := oidc.New(oidc.Config{
		Issuer: idp.Issuer(), ClientID: oidcdev.ClientID, ClientSecret: oidcdev.ClientSecret,
		RedirectURL: gw.URL + "/auth/callback", ForwardToken: oidc.ForwardIDToken, Now: clk.now,
		Scopes: oidcdev.Scopes,
	})
	require.NoError(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := signin.New(signin.Config{Store: store, OIDC: provider, Logger: quiet})
	require.NoError(t, err)
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{LedgerAddr: l.Addr, Logger: quiet, SignIn: svc})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	handler.Store(h)
	return oidcStack{gw: gw, idp: idp, codec: codec, clock: clk, ledger: l}
}

// browser keeps cookies like a browser and follows no redirect by itself.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request; headers are name, value pairs.
func (b *browser) do(method, rawURL, body string, headers ...string) (*http.Response, []byte) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), method, rawURL, strings.NewReader(body))
	require.NoError(b.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
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

// cookie returns the browser's cookie name for rawURL.
func (b *browser) cookie(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	require.NoError(b.t, err)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// signIn walks the sign-in of whoever the provider signs in next and returns the landing path.
func (s oidcStack) signIn(t *testing.T, b *browser, returnTo string) string {
	t.Helper()
	resp, _ := b.do("GET", s.gw.URL+"/auth/login?return_to="+url.QueryEscape(returnTo), "")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	toIdP := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(toIdP, s.idp.AuthorizationEndpoint()), toIdP)

	resp, _ = b.do("GET", toIdP, "")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	back := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(back, s.gw.URL+"/auth/callback?"), back)

	resp, body := b.do("GET", back, "")
	require.Equal(t, http.StatusFound, resp.StatusCode, "%s", body)
	return resp.Header.Get("Location")
}

// me returns GET /auth/me.
func (b *browser) me(gw string) (int, map[string]any) {
	b.t.Helper()
	resp, raw := b.do("GET", gw+"/auth/me", "")
	var out map[string]any
	require.NoError(b.t, json.Unmarshal(raw, &out), "%s", raw)
	return resp.StatusCode, out
}

var (
	ada     = auth.Claims{Subject: "user-ada", OrgID: "acme", Name: "Ada Lovelace", Email: "ada@acme.test", Roles: []auth.Role{auth.RoleMember}}
	opsUser = auth.Claims{Subject: "ops-dev", Name: "Ops", Email: "ops@tally.test", Roles: []auth.Role{auth.RoleOps}}
	globex  = auth.Claims{Subject: "user-wile", OrgID: "globex", Name: "Wile E.", Email: "wile@globex.test", Roles: []auth.Role{auth.RoleMember}}
)

// TestOIDCSignInEndToEnd signs people in against a real provider and uses the console's session
// against a real ledger that verifies the forwarded token with the provider's JWKS.
func TestOIDCSignInEndToEnd(t *testing.T) {
	t.Parallel()
	s := startOIDCStack(t)
	s.checkLoginRedirect(t)

	// Ada signs in and lands on /billing with the session cookie.
	s.idp.Queue(ada)
	b := newBrowser(t)
	require.Equal(t, "/billing", s.signIn(t, b, "/billing"))
	sealed := b.cookie(s.gw.URL, session.CookieName)
	require.NotEmpty(t, sealed)
	require.NotContains(t, sealed, ".", "the cookie is sealed, not a JWT")
	adaCSRF := checkAdaMe(t, b, s.gw.URL)

	// Ops signs in in another browser and credits acme: a write through the cookie.
	s.idp.Queue(opsUser)
	ops := newBrowser(t)
	s.signIn(t, ops, "/")
	_, opsMe := ops.me(s.gw.URL)
	opsCSRF := opsMe["csrfToken"].(string)
	credit := `{"amount":{"currencyCode":"USD","units":"25"},"idempotencyKey":"oidc-1","reason":"grant"}`
	s.checkCookieWrites(t, ops, credit, adaCSRF, opsCSRF)

	// Ada reads acme's balance with her cookie; the ledger verified the forwarded token.
	resp, raw := b.do("GET", s.gw.URL+"/v1/orgs/acme/balance", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
	var bal map[string]any
	require.NoError(t, json.Unmarshal(raw, &bal))
	require.Equal(t, "25", bal["balance"].(map[string]any)["units"])
	// A member cannot credit, CSRF token or not: the ledger refuses.
	resp, raw = b.do("POST", s.gw.URL+"/v1/orgs/acme/credits", credit, session.CSRFHeader, adaCSRF)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", raw)

	// A request with its own Authorization header ignores the cookie.
	resp, raw = b.do("GET", s.gw.URL+"/v1/orgs/acme/balance", "", "Authorization", "Bearer not-a-jwt")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", raw)

	// A member of another organization signs in and is refused acme's data by the ledger.
	s.idp.Queue(globex)
	other := newBrowser(t)
	s.signIn(t, other, "/")
	resp, raw = other.do("GET", s.gw.URL+"/v1/orgs/acme/balance", "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", raw)
	resp, raw = other.do("GET", s.gw.URL+"/v1/orgs/globex/balance", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)

	checkSignOut(t, b, s.gw.URL, adaCSRF)
}

// checkLoginRedirect: the redirect to the provider has an authorization code, PKCE S256, state
// and nonce.
func (s oidcStack) checkLoginRedirect(t *testing.T) {
	b := newBrowser(t)
	resp, _ := b.do("GET", s.gw.URL+"/auth/login?return_to=/billing", "")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	q := loc.Query()
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Len(t, q.Get("code_challenge"), 43, "base64url SHA-256")
	require.NotEmpty(t, q.Get("state"))
	require.NotEmpty(t, q.Get("nonce"))
	require.Equal(t, s.gw.URL+"/auth/callback", q.Get("redirect_uri"))
	require.Contains(t, strings.Fields(q.Get("scope")), "openid")
}

// checkAdaMe checks /auth/me for Ada (no token reaches the page) and returns her CSRF token.
func checkAdaMe(t *testing.T, b *browser, gw string) string {
	code, me := b.me(gw)
	require.Equal(t, http.StatusOK, code, "%v", me)
	require.Equal(t, "user-ada", me["subject"])
	require.Equal(t, "Ada Lovelace", me["name"])
	require.Equal(t, "ada@acme.test", me["email"])
	require.Equal(t, "acme", me["orgId"])
	require.Equal(t, []any{"member"}, me["roles"])
	require.NotEmpty(t, me["csrfToken"])
	require.NotEmpty(t, me["expiresAt"])
	for _, v := range me {
		if str, ok := v.(string); ok {
			require.NotContains(t, str, "eyJ", "no token reaches the page")
		}
	}
	return me["csrfToken"].(string)
}

// checkCookieWrites: a write through the cookie needs the session's own CSRF token and origin.
func (s oidcStack) checkCookieWrites(t *testing.T, ops *browser, credit, adaCSRF, opsCSRF string) {
	writes := []struct {
		name    string
		headers []string
		want    int
	}{
		{"no csrf token", nil, http.StatusForbidden},
		{"wrong csrf token", []string{session.CSRFHeader, adaCSRF}, http.StatusForbidden},
		{"foreign origin", []string{session.CSRFHeader, opsCSRF, "Origin", "https://evil.test"}, http.StatusForbidden},
		{"cross-site fetch", []string{session.CSRFHeader, opsCSRF, "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"csrf token, own origin", []string{session.CSRFHeader, opsCSRF, "Origin", s.gw.URL, "Sec-Fetch-Site", "same-origin"}, http.StatusOK},
	}
	for _, tt := range writes {
		t.Run(tt.name, func(t *testing.T) {
			resp, raw := ops.do("POST", s.gw.URL+"/v1/orgs/acme/credits", credit, tt.headers...)
			require.Equal(t, tt.want, resp.StatusCode, "%s", raw)
			var body map[string]any
			require.NoError(t, json.Unmarshal(raw, &body), "%s", raw)
			if tt.want != http.StatusOK {
				require.Equal(t, "PERMISSION_DENIED", body["code"], "the gateway's JSON error shape: %s", raw)
				require.NotEmpty(t, body["message"])
			}
		})
	}
}

// checkSignOut: sign-out needs the CSRF token, then clears the cookie.
func checkSignOut(t *testing.T, b *browser, gw, csrf string) {
	resp, _ := b.do("POST", gw+"/auth/logout", "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = b.do("POST", gw+"/auth/logout", "", session.CSRFHeader, csrf)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Empty(t, b.cookie(gw, session.CookieName))
	code, me := b.me(gw)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "UNAUTHENTICATED", me["code"])
	resp, _ = b.do("GET", gw+"/v1/orgs/acme/balance", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "signed out: no token forwarded")
}

// TestOIDCCallbackRefusals covers callbacks that must not sign anyone in.
func TestOIDCCallbackRefusals(t *testing.T) {
	t.Parallel()
	s := startOIDCStack(t)

	// begin starts a sign-in in b and returns the provider's redirect back to the gateway.
	begin := func(t *testing.T, b *browser) *url.URL {
		t.Helper()
		s.idp.Queue(ada)
		resp, _ := b.do("GET", s.gw.URL+"/auth/login", "")
		require.Equal(t, http.StatusFound, resp.StatusCode)
		resp, _ = b.do("GET", resp.Header.Get("Location"), "")
		require.Equal(t, http.StatusFound, resp.StatusCode)
		back, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		return back
	}
	tests := []struct {
		name   string
		mangle func(t *testing.T, back *url.URL, b *browser) *browser
		want   int
	}{
		{"state mismatch", func(_ *testing.T, back *url.URL, b *browser) *browser {
			q := back.Query()
			q.Set("state", "forged-"+q.Get("state"))
			back.RawQuery = q.Encode()
			return b
		}, http.StatusBadRequest},
		{"no state", func(_ *testing.T, back *url.URL, b *browser) *browser {
			q := back.Query()
			q.Del("state")
			back.RawQuery = q.Encode()
			return b
		}, http.StatusBadRequest},
		{"another browser (no flow cookie)", func(t *testing.T, _ *url.URL, _ *browser) *browser {
			return newBrowser(t)
		}, http.StatusBadRequest},
		{"provider error", func(_ *testing.T, back *url.URL, b *browser) *browser {
			q := back.Query()
			q.Del("code")
			q.Set("error", "access_denied")
			back.RawQuery = q.Encode()
			return b
		}, http.StatusUnauthorized},
		{"forged code", func(_ *testing.T, back *url.URL, b *browser) *browser {
			q := back.Query()
			q.Set("code", "made-up")
			back.RawQuery = q.Encode()
			return b
		}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t)
			back := begin(t, b)
			b = tt.mangle(t, back, b)
			resp, raw := b.do("GET", back.String(), "")
			require.Equal(t, tt.want, resp.StatusCode, "%s", raw)
			require.Empty(t, b.cookie(s.gw.URL, session.CookieName), "no session")
			code, _ := b.me(s.gw.URL)
			require.Equal(t, http.StatusUnauthorized, code)
		})
	}

	t.Run("the callback signs in once", func(t *testing.T) {
		b := newBrowser(t)
		back := begin(t, b)
		resp, _ := b.do("GET", back.String(), "")
		require.Equal(t, http.StatusFound, resp.StatusCode)
		resp, _ = b.do("GET", back.String(), "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "the flow cookie is spent")
		replay := newBrowser(t)
		resp, _ = replay.do("GET", back.String(), "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "no flow cookie in the replaying browser")
	})
}

// TestOIDCSessionRenewal renews the forwarded token with the refresh token once two thirds of
// its lifetime have passed, and keeps using the session.
func TestOIDCSessionRenewal(t *testing.T) {
	t.Parallel()
	s := startOIDCStack(t)
	s.idp.Queue(ada)
	b := newBrowser(t)
	s.signIn(t, b, "/")
	var before session.Session
	require.NoError(t, s.codec.Open(session.CookieName, b.cookie(s.gw.URL, session.CookieName), &before))
	require.NotEmpty(t, before.RefreshToken)
	life := before.TokenExpiry.Sub(before.TokenIssuedAt)
	require.Positive(t, life)

	// Not due yet: no refresh.
	code, _ := b.me(s.gw.URL)
	require.Equal(t, http.StatusOK, code)
	require.Zero(t, s.idp.Refreshes())

	// Past two thirds of the token's life (by the gateway's clock): the next request refreshes.
	s.clock.advance(life*2/3 + time.Second)
	code, me := b.me(s.gw.URL)
	require.Equal(t, http.StatusOK, code, "%v", me)
	require.EqualValues(t, 1, s.idp.Refreshes())
	var after session.Session
	require.NoError(t, s.codec.Open(session.CookieName, b.cookie(s.gw.URL, session.CookieName), &after))
	require.Equal(t, before.ID, after.ID, "the same sign-in")
	require.Equal(t, before.CSRF, after.CSRF)
	// The provider's clock is the real one: the renewed token is fresh by it.
	s.clock.reset()
	require.False(t, after.RenewDue(time.Now()), "the renewed token is fresh")

	// The renewed token works downstream (verified with real time by the ledger).
	resp, raw := b.do("GET", s.gw.URL+"/v1/orgs/acme/balance", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)

	// A refused refresh token ends the sign-in.
	s.clock.advance(life*2/3 + time.Second)
	s.idp.QueueError(&mockoidc.ServerError{Code: http.StatusBadRequest, Error: mockoidc.InvalidGrant, Description: "revoked"})
	code, _ = b.me(s.gw.URL)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Empty(t, b.cookie(s.gw.URL, session.CookieName))
}
