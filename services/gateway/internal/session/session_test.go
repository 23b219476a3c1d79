package session_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/services/gateway/internal/session"
)

func newCodec(t *testing.T, key string) *session.Codec {
	t.Helper()
	c, err := session.NewCodec([]byte(key))
	require.NoError(t, err)
	return c
}

const key1 = "0123456789abcdef0123456789abcdef"

func TestCodec(t *testing.T) {
	t.Parallel()
	_, err := session.NewCodec([]byte("short"))
	require.Error(t, err)

	c := newCodec(t, key1)
	sealed, err := c.Seal("tally_session", map[string]string{"a": "b"}, time.Now().Add(time.Hour))
	require.NoError(t, err)
	flip := []byte(sealed)
	flip[len(flip)/2] ^= 1
	dev, err := session.NewDevCodec()
	require.NoError(t, err)
	later := c.WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) })

	tests := []struct {
		name    string
		codec   *session.Codec
		purpose string
		value   string
		ok      bool
	}{
		{"round trip", c, "tally_session", sealed, true},
		{"same key material, another codec", newCodec(t, key1), "tally_session", sealed, true},
		{"tampered", c, "tally_session", string(flip), false},
		{"other purpose", c, "tally_oidc_flow", sealed, false},
		{"other key", newCodec(t, key1+"x"), "tally_session", sealed, false},
		{"development key", dev, "tally_session", sealed, false},
		{"expired", later, "tally_session", sealed, false},
		{"not base64", c, "tally_session", "!!!", false},
		{"empty", c, "tally_session", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out map[string]string
			err := tt.codec.Open(tt.purpose, tt.value, &out)
			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, "b", out["a"])
				return
			}
			require.ErrorIs(t, err, session.ErrInvalid)
		})
	}
}

func TestDevCodecIsStable(t *testing.T) {
	t.Parallel()
	a, err := session.NewDevCodec()
	require.NoError(t, err)
	b, err := session.NewDevCodec()
	require.NoError(t, err)
	sealed, err := a.Seal(session.CookieName, "x", time.Now().Add(time.Minute))
	require.NoError(t, err)
	var out string
	require.NoError(t, b.Open(session.CookieName, sealed, &out), "a restarted gateway opens its development cookies")
}

func TestOriginsCheck(t *testing.T) {
	t.Parallel()
	origins, err := session.ParseOrigins(" https://console.example.com , http://localhost:5173")
	require.NoError(t, err)
	_, err = session.ParseOrigins("console.example.com")
	require.Error(t, err)
	tests := []struct {
		name, origin, site string
		ok                 bool
	}{
		{"no browser headers", "", "", true},
		{"own origin", "http://gw.test", "same-origin", true},
		{"listed origin", "https://console.example.com", "same-site", true},
		{"listed origin, other case", "HTTPS://Console.Example.com", "cross-site", false},
		{"listed origin cross-site", "http://localhost:5173", "cross-site", false},
		{"foreign origin", "https://evil.test", "", false},
		{"null origin", "null", "", false},
		{"cross-site without origin", "", "cross-site", false},
		{"typed in the address bar", "", "none", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://gw.test/v1/x", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.site != "" {
				r.Header.Set("Sec-Fetch-Site", tt.site)
			}
			err := origins.Check(r)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

// countingRenewer renews tokens, counting the renewals, once release is closed.
type countingRenewer struct {
	calls   atomic.Int64
	release chan struct{}
	err     error
}

func (c *countingRenewer) Renew(_ context.Context, s session.Session) (session.Session, error) {
	c.calls.Add(1)
	<-c.release
	if c.err != nil {
		return session.Session{}, c.err
	}
	s.Token = "renewed"
	s.TokenIssuedAt = time.Now()
	s.TokenExpiry = time.Now().Add(15 * time.Minute)
	return s, nil
}

// fixture is an authenticator in front of a handler recording the Authorization it gets.
type fixture struct {
	store   *session.Store
	handler http.Handler
	renewer *countingRenewer
	seen    chan string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	store, err := session.NewStore(newCodec(t, key1))
	require.NoError(t, err)
	renewer := &countingRenewer{release: make(chan struct{})}
	a, err := session.NewAuthenticator(session.AuthenticatorConfig{
		Store: store, Renewers: map[string]session.Renewer{session.KindDev: renewer},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	seen := make(chan string, 64)
	h := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "" {
			seen <- "cookie reached the services"
			return
		}
		seen <- r.Header.Get("Authorization")
		w.WriteHeader(http.StatusOK)
	}))
	return fixture{store: store, handler: h, renewer: renewer, seen: seen}
}

// cookieFor returns the session cookie of s.
func (f fixture) cookieFor(t *testing.T, s session.Session) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	require.NoError(t, f.store.Save(rec, s))
	c := rec.Result().Cookies()
	require.Len(t, c, 1)
	require.True(t, c[0].HttpOnly)
	require.True(t, c[0].Secure)
	require.Equal(t, http.SameSiteLaxMode, c[0].SameSite)
	require.Equal(t, "/", c[0].Path)
	return c[0]
}

func devSession(t *testing.T, issued time.Time) session.Session {
	t.Helper()
	s, err := session.New(session.KindDev, auth.Claims{Subject: "user-ada", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}},
		"token-1", issued, issued.Add(15*time.Minute), time.Now().Add(time.Hour))
	require.NoError(t, err)
	return s
}

func TestAuthenticator(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	close(f.renewer.release)
	s := devSession(t, time.Now())
	cookie := f.cookieFor(t, s)
	tests := []struct {
		name, method, auth, csrf string
		cookie                   *http.Cookie
		want                     int
		wantAuth                 string
	}{
		{"cookie GET", "GET", "", "", cookie, http.StatusOK, "Bearer token-1"},
		{"cookie POST with csrf", "POST", "", s.CSRF, cookie, http.StatusOK, "Bearer token-1"},
		{"cookie POST without csrf", "POST", "", "", cookie, http.StatusForbidden, ""},
		{"cookie DELETE with a wrong csrf", "DELETE", "", "nope", cookie, http.StatusForbidden, ""},
		{"bearer wins over the cookie", "POST", "Bearer own", "", cookie, http.StatusOK, "Bearer own"},
		{"no cookie", "POST", "", "", nil, http.StatusOK, ""},
		{"garbage cookie", "GET", "", "", &http.Cookie{Name: session.CookieName, Value: "garbage"}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://gw.test/v1/orgs/acme/balance", nil)
			if tt.cookie != nil {
				r.AddCookie(tt.cookie)
			}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.csrf != "" {
				r.Header.Set(session.CSRFHeader, tt.csrf)
			}
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, r)
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			if tt.want == http.StatusOK {
				require.Equal(t, tt.wantAuth, <-f.seen)
			} else {
				require.JSONEq(t, `{"code":"PERMISSION_DENIED","message":"missing or wrong X-CSRF-Token header: read the token from GET /auth/me","details":[]}`, rec.Body.String())
			}
		})
	}
	require.Zero(t, f.renewer.calls.Load(), "a fresh token is not renewed")
}

// TestAuthenticatorRenewsOnce renews a token due for renewal once for concurrent requests.
func TestAuthenticatorRenewsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cookie := f.cookieFor(t, devSession(t, time.Now().Add(-11*time.Minute)))
	const n = 8
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("GET", "http://gw.test/v1/x", nil)
			r.AddCookie(cookie)
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, r)
			codes <- rec.Code
		}()
	}
	require.Eventually(t, func() bool { return f.renewer.calls.Load() == 1 }, 10*time.Second, time.Millisecond)
	close(f.renewer.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		require.Equal(t, http.StatusOK, c)
	}
	for range n {
		require.Equal(t, "Bearer renewed", <-f.seen)
	}
	// Requests that arrived after the shared renewal finished may renew again: never more than n.
	require.LessOrEqual(t, f.renewer.calls.Load(), int64(n))
}

func TestAuthenticatorEndsRefusedSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.renewer.err = session.ErrSignedOut
	close(f.renewer.release)
	cookie := f.cookieFor(t, devSession(t, time.Now().Add(-11*time.Minute)))
	r := httptest.NewRequest("GET", "http://gw.test/v1/x", nil)
	r.AddCookie(cookie)
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, r)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, <-f.seen, "no token forwarded for an ended session")
	cleared := rec.Result().Cookies()
	require.Len(t, cleared, 1)
	require.Equal(t, -1, cleared[0].MaxAge)
}
