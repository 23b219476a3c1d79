package session

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/server"
)

// CSRFHeader carries the session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// renewTimeout bounds one renewal of a session's token (a call to the identity provider).
const renewTimeout = 10 * time.Second

// Renewer replaces the token of a session before it expires.
type Renewer interface {
	// Renew returns s with a fresh token (and possibly a refreshed identity).
	Renew(ctx context.Context, s Session) (Session, error)
}

// ErrNotRenewable reports a session whose token cannot be renewed (no refresh token): it lasts
// while the token does.
var ErrNotRenewable = errors.New("the session's token cannot be renewed")

// ErrSignedOut reports a session that cannot be renewed any more: the sign-in has ended.
var ErrSignedOut = errors.New("the sign-in has ended")

// Authenticator turns the session cookie into the bearer token of the downstream call.
type Authenticator struct {
	store    *Store
	renewers map[string]Renewer
	origins  Origins
	logger   *slog.Logger
	renewals singleflight.Group
}

// AuthenticatorConfig configures an Authenticator.
type AuthenticatorConfig struct {
	Store *Store
	// Renewers renew the tokens of each Kind of session; a kind without one is not renewed and
	// ends when its token does.
	Renewers map[string]Renewer
	// Origins are the origins, besides the request's own, whose pages may send state-changing
	// requests with the cookie (the console's URL, TALLY_CORS_ORIGINS).
	Origins Origins
	Logger  *slog.Logger
}

// NewAuthenticator returns an authenticator; the store and the logger are required.
func NewAuthenticator(cfg AuthenticatorConfig) (*Authenticator, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("session authenticator: store is required")
	case cfg.Logger == nil:
		return nil, errors.New("session authenticator: logger is required")
	}
	return &Authenticator{store: cfg.Store, renewers: cfg.Renewers, origins: cfg.Origins, logger: cfg.Logger}, nil
}

// Handler authenticates the requests of next by their session cookie: it renews the token when
// due, refuses state-changing requests without the CSRF token or from a foreign origin (403), and
// sets Authorization: Bearer <token> for the downstream call. A request carrying its own
// Authorization header is passed on untouched (no cookie, no CSRF check); a request with no
// valid session is passed on without credentials, for the services to refuse.
func (a *Authenticator) Handler(next http.Handler) http.Handler {
	next = withoutCookies(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Authorization"]; ok {
			next.ServeHTTP(w, r)
			return
		}
		s, ok := a.Session(w, r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if err := a.CheckWrite(r, s); err != nil {
			server.WriteHTTPError(w, http.StatusForbidden, codes.PermissionDenied, err.Error())
			return
		}
		r.Header.Set("Authorization", "Bearer "+s.Token)
		next.ServeHTTP(w, r)
	})
}

// withoutCookies passes requests on without their cookies: grpc-gateway would forward the Cookie
// header to the services as metadata, and nothing downstream reads cookies.
func withoutCookies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Cookie")
		next.ServeHTTP(w, r)
	})
}

// Session returns the request's valid session, renewing its token (and rewriting the cookie)
// when due. A cookie that does not open, or a session that cannot be renewed, is cleared.
func (a *Authenticator) Session(w http.ResponseWriter, r *http.Request) (Session, bool) {
	s, found, err := a.store.Load(r)
	if !found {
		return Session{}, false
	}
	if err != nil {
		a.store.Clear(w)
		return Session{}, false
	}
	now := a.store.Now()
	if !s.RenewDue(now) || !s.TokenExpiry.Before(s.ExpiresAt) {
		// Not due, or the token outlives the sign-in anyway.
		return s, true
	}
	renewed, err := a.renew(r.Context(), s)
	switch {
	case err == nil:
		if err := a.store.Save(w, renewed); err != nil {
			a.logger.Error("session not saved after renewal", "err", err)
			a.store.Clear(w)
			return Session{}, false
		}
		return renewed, true
	case now.Before(s.TokenExpiry) && errors.Is(err, ErrNotRenewable):
		return s, true
	case now.Before(s.TokenExpiry) && !errors.Is(err, ErrSignedOut):
		// The provider is unreachable: keep the current token while it lasts.
		a.logger.Warn("session renewal failed, keeping the current token", "kind", s.Kind, "err", err)
		return s, true
	default:
		a.logger.Info("session ended", "kind", s.Kind, "reason", err)
		a.store.Clear(w)
		return Session{}, false
	}
}

// renew renews s once however many requests ask at the same moment.
func (a *Authenticator) renew(ctx context.Context, s Session) (Session, error) {
	renewer, ok := a.renewers[s.Kind]
	if !ok {
		return Session{}, ErrSignedOut
	}
	v, err, _ := a.renewals.Do(s.ID, func() (any, error) {
		// Detached from one request's cancellation (others wait on it), bounded on its own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		return renewer.Renew(rctx, s)
	})
	if err != nil {
		return Session{}, err
	}
	return v.(Session), nil
}

// CheckWrite refuses a state-changing request (not GET, HEAD or OPTIONS) authenticated by s
// without s's CSRF token, or sent by a page of a foreign origin.
func (a *Authenticator) CheckWrite(r *http.Request, s Session) error {
	if safeMethod(r.Method) {
		return nil
	}
	if err := a.origins.Check(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		return errors.New("missing or wrong " + CSRFHeader + " header: read the token from GET /auth/me")
	}
	return nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Origins lists the origins (scheme://host[:port]) besides a request's own whose pages may send
// it state-changing requests carrying the session cookie.
type Origins []string

// ParseOrigins reads a comma-separated list of exact origins, refusing anything else.
func ParseOrigins(list string) (Origins, error) {
	var out Origins
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		canon, err := CanonicalOrigin(o)
		if err != nil {
			return nil, err
		}
		out = append(out, canon)
	}
	return out, nil
}

// CanonicalOrigin returns the origin of raw (an origin or a URL), lowercased: scheme://host[:port].
func CanonicalOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", errors.New("not an http(s) origin: " + strconvQuote(raw))
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return `"` + s + `"`
}

// Allowed reports whether origin is one of o.
func (o Origins) Allowed(origin string) bool {
	return slices.Contains(o, strings.ToLower(origin))
}

// Check refuses a request sent from a foreign page: an Origin header that is neither the
// request's own origin nor one of o, or Sec-Fetch-Site saying cross-site (or same-site from an
// origin not listed). Requests without these headers (not from a browser) pass: the CSRF token
// still guards them.
func (o Origins) Check(r *http.Request) error {
	origin := r.Header.Get("Origin")
	own := false
	if origin != "" {
		u, err := url.Parse(origin)
		switch {
		case err != nil || u.Host == "":
			return errors.New("cross-origin request refused: the Origin header is not an origin")
		case strings.EqualFold(u.Host, r.Host):
			own = true
		case !o.Allowed(origin):
			return errors.New("cross-origin request refused: origin not allowed")
		}
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin":
	case "same-site":
		if origin == "" || own {
			return errors.New("cross-origin request refused: same-site request without an allowed Origin")
		}
	default:
		return errors.New("cross-origin request refused (Sec-Fetch-Site: " + strconvQuote(site) + ")")
	}
	return nil
}
