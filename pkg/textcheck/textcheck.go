// Package textcheck is tally's one rule for the text callers send, used by the request
// validation of every service and, as a floor under it, by pkg/server for every string field of
// every request.
//
// Two kinds of text:
//
//   - Identifiers and keys (organization and member ids, idempotency keys, metadata keys, ids
//     of models, instances and holds): printable ASCII, U+0021 to U+007E. No spaces, no control,
//     format or non-ASCII characters, so that two keys that look the same are the same key.
//   - Free text (descriptions, reasons, names, addresses, metadata values): any printable
//     Unicode plus tab (U+0009) and line feed (U+000A). Refused: invalid UTF-8, NUL and every
//     other control character (carriage return included: send "\n" line breaks), the
//     bidirectional controls U+061C, U+200E, U+200F, U+202A–U+202E and U+2066–U+2069 (they make
//     text display in another order than it reads, "Trojan Source"), every other format
//     character except the zero-width non-joiner and joiner U+200C/U+200D (which some scripts and
//     emoji sequences need), the line and paragraph separators U+2028/U+2029, and noncharacters
//     (U+FDD0–U+FDEF, U+xxFFFE, U+xxFFFF).
//
// Errors name the field and the offending code point, never the text itself. Quote is how a
// message may show a caller's input: at most MaxEcho bytes of it.
package textcheck

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid matches every error of this package (errors.Is).
var ErrInvalid = errors.New("invalid text")

// Error says which field holds what. Its message is "<field> <problem>", e.g.
// "idempotency_key contains a NUL character".
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

// Identifier checks an identifier or key of at most max bytes: printable ASCII without spaces.
// An empty string passes (whether a field is required is the caller's rule).
func Identifier(field, s string, max int) error {
	if len(s) > max {
		return invalid(field, "is longer than %d bytes", max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > 0x20 && c < 0x7f {
			continue
		}
		if c < utf8.RuneSelf {
			return describe(field, rune(c))
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return invalid(field, "is not valid UTF-8")
		}
		if err := checkFree(field, r); err != nil {
			return err
		}
		return invalid(field, "may hold only printable ASCII characters (found %U)", r)
	}
	return nil
}

// FreeText checks free text of at most max bytes (see the package comment for what it allows).
func FreeText(field, s string, max int) error {
	if len(s) > max {
		return invalid(field, "is longer than %d bytes", max)
	}
	return Printable(field, s)
}

// Printable is FreeText without a length limit: the floor every string of a request must meet.
func Printable(field, s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			return describe(field, rune(c))
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return invalid(field, "is not valid UTF-8")
		}
		if err := checkFree(field, r); err != nil {
			return err
		}
		i += size
	}
	return nil
}

// checkFree refuses a non-ASCII rune that free text may not hold.
func checkFree(field string, r rune) error {
	switch {
	case IsBidiControl(r):
		return invalid(field, "contains a bidirectional control character (%U)", r)
	case r == 0x200C || r == 0x200D:
		return nil
	case r == 0x2028 || r == 0x2029:
		return invalid(field, "contains a line or paragraph separator (%U); use \\n", r)
	case r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE:
		return invalid(field, "contains a noncharacter (%U)", r)
	case unicode.Is(unicode.Cc, r):
		return invalid(field, "contains a control character (%U)", r)
	case unicode.Is(unicode.Cf, r):
		return invalid(field, "contains an invisible format character (%U)", r)
	}
	return nil
}

// describe reports an ASCII byte that the field may not hold.
func describe(field string, r rune) error {
	switch {
	case r == 0:
		return invalid(field, "contains a NUL character")
	case r == ' ':
		return invalid(field, "must not contain spaces")
	case r < 0x20 || r == 0x7f:
		return invalid(field, "contains a control character (%U)", r)
	}
	return invalid(field, "contains a character it may not hold (%U)", r)
}

// IsBidiControl reports whether r is one of the Unicode bidirectional formatting characters:
// ALM U+061C, LRM/RLM U+200E/U+200F, the embeddings and overrides U+202A–U+202E and the
// isolates U+2066–U+2069.
func IsBidiControl(r rune) bool {
	return r == 0x061C || r == 0x200E || r == 0x200F || r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069
}

// MaxEcho is the most of a caller's input an error message shows.
const MaxEcho = 32

// Quote returns s quoted like %q, cut to its first MaxEcho bytes (on a character boundary) with
// "…" after the closing quote when it was longer: how error messages show a caller's input.
func Quote(s string) string {
	t := Truncate(s, MaxEcho)
	if len(t) < len(s) {
		return strconv.Quote(t) + "…"
	}
	return strconv.Quote(s)
}

// Truncate returns s cut to its first n bytes or fewer: on a character boundary, so that a valid
// UTF-8 text stays valid. It is how a log line, a report or a stored error keeps a bounded part
// of a longer text.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	// Back off at most one character's worth: invalid UTF-8 has no boundary to find.
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Abbreviate is Truncate followed by "…" when s was cut, for text a person reads.
func Abbreviate(s string, n int) string {
	if t := Truncate(s, n); len(t) < len(s) {
		return t + "…"
	}
	return s
}

// FieldViolation names the field and the problem (pkg/fieldviolation).
func (e *Error) FieldViolation() (field, description string) { return e.Field, e.Error() }
