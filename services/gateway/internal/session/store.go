package session

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
)

// CookieName is the session cookie.
const CookieName = "tally_session"

// maxCookieBytes is the most a browser is sure to keep of one cookie (name, value, attributes).
const maxCookieBytes = 4096

// Kinds of session: how the session's token is renewed.
const (
	// KindOIDC sessions hold the identity provider's token and renew it with the refresh token.
	KindOIDC = "oidc"
	// KindDev sessions hold a development token minted by the gateway (TALLY_ENV=development).
	KindDev = "dev"
)

// Session is a signed-in browser: who it is, the token forwarded to the services for it (never
// shown to the browser's scripts), the CSRF token its state-changing requests must echo, and
// when the sign-in ends.
type Session struct {
	// ID names the session (renewals of one session share one refresh).
	ID      string      `json:"sid"`
	Kind    string      `json:"k"`
	Subject string      `json:"sub"`
	Name    string      `json:"name,omitempty"`
	Email   string      `json:"email,omitempty"`
	OrgID   string      `json:"org,omitempty"`
	Roles   []auth.Role `json:"roles,omitempty"`
	// Token is the bearer token forwarded downstream, valid from TokenIssuedAt to TokenExpiry.
	Token         string    `json:"tok"`
	TokenIssuedAt time.Time `json:"tiat"`
	TokenExpiry   time.Time `json:"texp"`
	// RefreshToken renews an OIDC session's token; empty when the provider gave none.
	RefreshToken string `json:"rt,omitempty"`
	// CSRF is the token state-changing requests carry in X-CSRF-Token.
	CSRF string `json:"csrf"`
	// ExpiresAt is when the sign-in ends, renewed or not.
	ExpiresAt time.Time `json:"exp"`
}

// Claims returns the identity of the session.
func (s Session) Claims() auth.Claims {
	return auth.Claims{Subject: s.Subject, OrgID: s.OrgID, Email: s.Email, Name: s.Name, Roles: s.Roles, ExpiresAt: s.TokenExpiry}
}

// RenewDue reports whether the token should be replaced at now: two thirds of its lifetime
// have passed.
func (s Session) RenewDue(now time.Time) bool {
	life := s.TokenExpiry.Sub(s.TokenIssuedAt)
	return !now.Before(s.TokenIssuedAt.Add(life * 2 / 3))
}

// New returns a session for identity c holding token, with fresh ID and CSRF tokens, ending
// at expiresAt.
func New(kind string, c auth.Claims, token string, issuedAt, tokenExpiry, expiresAt time.Time) (Session, error) {
	id, err := RandomToken()
	if err != nil {
		return Session{}, err
	}
	csrf, err := RandomToken()
	if err != nil {
		return Session{}, err
	}
	return Session{
		ID: id, Kind: kind, Subject: c.Subject, Name: c.Name, Email: c.Email, OrgID: c.OrgID, Roles: c.Roles,
		Token: token, TokenIssuedAt: issuedAt, TokenExpiry: tokenExpiry, CSRF: csrf, ExpiresAt: expiresAt,
	}, nil
}

// RandomToken returns 32 random bytes, base64url.
func RandomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Store reads and writes sessions in the session cookie.
type Store struct {
	codec *Codec
	now   func() time.Time
}

// NewStore returns a store sealing sessions with codec.
func NewStore(codec *Codec) (*Store, error) {
	if codec == nil {
		return nil, errors.New("session store: codec is required")
	}
	return &Store{codec: codec, now: codec.now}, nil
}

// Codec returns the store's codec (for the short-lived cookies of a sign-in).
func (st *Store) Codec() *Codec { return st.codec }

// Now returns the store's time.
func (st *Store) Now() time.Time { return st.now() }

// Load returns the request's session. found reports a session cookie at all: found and an
// error mean a cookie that does not open (tampered, old key, ended), which the caller clears.
func (st *Store) Load(r *http.Request) (s Session, found bool, err error) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return Session{}, false, nil
	}
	if err := st.codec.Open(CookieName, c.Value, &s); err != nil {
		return Session{}, true, err
	}
	if s.Subject == "" || s.Token == "" || s.CSRF == "" || !st.now().Before(s.ExpiresAt) {
		return Session{}, true, ErrInvalid
	}
	return s, true, nil
}

// Save writes s as the session cookie of the response.
func (st *Store) Save(w http.ResponseWriter, s Session) error {
	value, err := st.codec.Seal(CookieName, s, s.ExpiresAt)
	if err != nil {
		return err
	}
	c := &http.Cookie{
		Name: CookieName, Value: value, Path: "/", Expires: s.ExpiresAt,
		MaxAge:   max(1, int(s.ExpiresAt.Sub(st.now()).Seconds())),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	}
	if len(c.String()) > maxCookieBytes {
		return fmt.Errorf("the session (%d bytes) does not fit in a cookie of %d bytes: the identity provider's tokens are too large", len(c.String()), maxCookieBytes)
	}
	http.SetCookie(w, c)
	return nil
}

// Clear removes the session cookie.
func (st *Store) Clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
}
