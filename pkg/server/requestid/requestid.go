// Package requestid carries the request id of a call in its context. It has no dependencies so
// that both the server (which accepts or makes the id) and the clients (which forward it) can
// import it; services use server.RequestID and rpcclient, not this package.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Header is the metadata key (gRPC) and header (HTTP, case-insensitively) of the request id.
const Header = "x-request-id"

// MaxLength is the longest request id accepted from a caller.
const MaxLength = 64

type ctxKey struct{}

// Valid reports whether id is acceptable from a caller: 1..MaxLength of [A-Za-z0-9._-].
func Valid(id string) bool {
	if id == "" || len(id) > MaxLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// New returns a fresh request id: 16 random bytes in lowercase hex.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// With returns ctx carrying id, or a new id when id is not Valid.
func With(ctx context.Context, id string) context.Context {
	if !Valid(id) {
		id = New()
	}
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the request id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}
