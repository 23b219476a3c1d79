// Package ids is tally's one rule for the identifiers callers send: organization and instance
// ids, member ids (token subjects), idempotency keys and UUIDs. Every service checks them here,
// so an id one service accepts is an id every service accepts.
//
// Errors are *Error values naming the field and the problem, never the text itself beyond a
// short quote; errors.Is(err, ErrInvalid) holds for all of them. Services wrap them with their
// own domain sentinel: fmt.Errorf("%w: %w", ledger.ErrInvalid, err).
package ids

import (
	"errors"
	"fmt"

	"github.com/tallyhq/tally/pkg/textcheck"
)

// Limits on identifiers, in bytes.
const (
	MaxIDLength       = 128 // organization and instance ids
	MaxKeyLength      = 255 // idempotency keys
	MaxMemberIDLength = 256 // member ids (token subjects)
)

// ErrInvalid matches every error of this package (errors.Is).
var ErrInvalid = errors.New("invalid identifier")

// Error says which field holds what. Its message is "<field> <problem>", e.g.
// "org_id must start with a letter or digit".
type Error struct {
	Field   string
	Problem string
}

func (e *Error) Error() string { return e.Field + " " + e.Problem }

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &Error{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// fromText turns a textcheck error into an *Error of this package.
func fromText(err error) error {
	if err == nil {
		return nil // before te, which escapes: no allocation per valid id
	}
	var te *textcheck.Error
	if errors.As(err, &te) {
		return &Error{Field: te.Field, Problem: te.Problem}
	}
	return err
}

// OrgID checks an organization id: ID("org_id", id).
func OrgID(id string) error { return ID("org_id", id) }

// ID checks an organization or instance id: 1 to 128 bytes of ASCII letters, digits and
// "._:@-", starting with a letter or digit.
func ID(field, id string) error {
	if id == "" {
		return invalid(field, "is required")
	}
	if len(id) > MaxIDLength {
		return invalid(field, "is longer than %d bytes", MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == ':' || c == '@' || c == '-':
			if i == 0 {
				return invalid(field, "must start with a letter or digit")
			}
		default:
			if err := textcheck.Identifier(field, id, MaxIDLength); err != nil {
				return fromText(err)
			}
			return invalid(field, "may hold only letters, digits and ._:@- (found %q)", c)
		}
	}
	return nil
}

// MemberID checks a member id (the subject of a member's token): 1 to 256 bytes of printable
// ASCII without spaces.
func MemberID(field, id string) error {
	if id == "" {
		return invalid(field, "is required")
	}
	return fromText(textcheck.Identifier(field, id, MaxMemberIDLength))
}

// IdempotencyKey checks an idempotency key: 1 to 255 bytes of printable ASCII without spaces.
func IdempotencyKey(field, key string) error {
	if key == "" {
		return invalid(field, "is required")
	}
	return fromText(textcheck.Identifier(field, key, MaxKeyLength))
}

// UUID checks a UUID and returns it in canonical form: lowercase, 8-4-4-4-12 hex digits. It
// accepts that form in either case, 32 hex digits without hyphens, and the braced
// ("{…}") and "urn:uuid:" forms.
func UUID(field, id string) (string, error) {
	s := id
	switch len(s) {
	case 36 + 9:
		if s[:9] != "urn:uuid:" {
			return "", notUUID(field, id)
		}
		s = s[9:]
	case 36 + 2:
		if s[0] != '{' || s[37] != '}' {
			return "", notUUID(field, id)
		}
		s = s[1:37]
	case 32:
		return canonical(field, id, s)
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", notUUID(field, id)
	}
	return canonical(field, id, s[:8]+s[9:13]+s[14:18]+s[19:23]+s[24:])
}

// canonical formats 32 hex digits as a lowercase hyphenated UUID.
func canonical(field, id, hex string) (string, error) {
	if len(hex) != 32 {
		return "", notUUID(field, id)
	}
	var b [36]byte
	j := 0
	for i := 0; i < 32; i++ {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[j] = '-'
			j++
		}
		c := hex[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", notUUID(field, id)
		}
		b[j] = c
		j++
	}
	return string(b[:]), nil
}

func notUUID(field, id string) error {
	return invalid(field, "%s is not a UUID", textcheck.Quote(id))
}

// FieldViolation names the field and the problem (pkg/fieldviolation).
func (e *Error) FieldViolation() (field, description string) { return e.Field, e.Error() }
