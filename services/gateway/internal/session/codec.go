// Package session keeps a signed-in browser's session in an encrypted, authenticated cookie
// (tally_session) and turns it, on each request, into the bearer token the gateway forwards to
// the services; requests it authenticates that change state must carry the session's CSRF token.
package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MinKeyLen is the least length in bytes of TALLY_SESSION_KEY.
const MinKeyLen = 32

// devKeyMaterial is the public key material of development sessions: a fixed value, so a gateway
// restarted during `make run` still opens the cookies it issued. Never used outside development.
const devKeyMaterial = "tally-development-session-key-do-not-use-in-production"

// ErrInvalid reports a sealed value that does not open: tampered with, sealed with another key or
// for another purpose, malformed, or expired.
var ErrInvalid = errors.New("session: invalid or expired value")

// Codec seals values with AES-256-GCM under a key derived from the configured key material
// (HKDF-SHA256); the purpose (the cookie name) is authenticated data, so a value sealed for one
// cookie never opens as another.
type Codec struct {
	aead cipher.AEAD
	now  func() time.Time
}

// NewCodec returns a codec for key, which must hold at least MinKeyLen bytes.
func NewCodec(key []byte) (*Codec, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("session key must be at least %d bytes, got %d", MinKeyLen, len(key))
	}
	derived, err := hkdf.Key(sha256.New, key, nil, "tally session cookie v1", 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the session key: %w", err)
	}
	block, err := aes.NewCipher(derived)
	if err != nil {
		return nil, fmt.Errorf("session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session cipher: %w", err)
	}
	return &Codec{aead: aead, now: time.Now}, nil
}

// NewDevCodec returns the codec of development: its key is derived from public material, so
// sessions survive a restart of the gateway and mean nothing outside development.
func NewDevCodec() (*Codec, error) {
	return NewCodec([]byte(devKeyMaterial))
}

// WithClock returns a copy of c reading the time from now (tests).
func (c *Codec) WithClock(now func() time.Time) *Codec {
	cp := *c
	cp.now = now
	return &cp
}

// envelope is what gets encrypted: the value and when it stops opening.
type envelope struct {
	Exp int64           `json:"exp"`
	V   json.RawMessage `json:"v"`
}

// Seal encrypts v (as JSON) for purpose; the result opens until exp.
func (c *Codec) Seal(purpose string, v any, exp time.Time) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("sealing %s: %w", purpose, err)
	}
	plain, err := json.Marshal(envelope{Exp: exp.Unix(), V: raw})
	if err != nil {
		return "", fmt.Errorf("sealing %s: %w", purpose, err)
	}
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("sealing %s: %w", purpose, err)
	}
	sealed := c.aead.Seal(nonce, nonce, plain, []byte(purpose))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open decrypts value sealed for purpose into v. It fails with ErrInvalid when the value was not
// sealed by this key for this purpose, or has expired.
func (c *Codec) Open(purpose, value string, v any) error {
	sealed, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(sealed) < c.aead.NonceSize()+c.aead.Overhead() {
		return ErrInvalid
	}
	n := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
	if err != nil {
		return ErrInvalid
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil {
		return ErrInvalid
	}
	if !c.now().Before(time.Unix(env.Exp, 0)) {
		return ErrInvalid
	}
	if err := json.Unmarshal(env.V, v); err != nil {
		return ErrInvalid
	}
	return nil
}
