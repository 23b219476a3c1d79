// Package fieldviolation names the request field an error is about, so that pkg/server can answer
// an InvalidArgument with google.rpc.BadRequest field violations (and the gateway with them in
// its REST error body) without any handler building statuses. Errors of pkg/ids and pkg/textcheck
// name their field already; a parse function that wraps an error without a field (a money
// error, say) names it with Wrap.
package fieldviolation

import (
	"regexp"
	"strings"
)

// Violation is an error about one field of a request: its path ("amount", "usage.model_id",
// "dimensions[1].unit") and a description a caller can read.
type Violation interface {
	error
	FieldViolation() (field, description string)
}

// Error is an error about the request field Field.
type Error struct {
	Field string
	Err   error
}

// Wrap returns err as an error about field, with the message "<field>: <err>"; a nil err stays nil.
func Wrap(field string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Field: field, Err: err}
}

func (e *Error) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the wrapped error, so errors.Is sees its sentinels.
func (e *Error) Unwrap() error { return e.Err }

// FieldViolation implements Violation.
func (e *Error) FieldViolation() (field, description string) { return e.Field, e.Err.Error() }

// Pair is one field violation.
type Pair struct {
	Field       string
	Description string
}

// fieldPath is what a field path looks like: snake_case names joined by dots, with list indexes.
// Other names an error may give ("the path", "query parameter \"x\"") are no request field.
var fieldPath = regexp.MustCompile(`^[a-z][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z][a-z0-9_]*(?:\[\d+\])?)*$`)

// All returns the field violations in err's tree (errors.Unwrap and errors joined with %w), the
// outermost first: a violation's own causes are not searched, so an ids error wrapped with Wrap
// counts once, under the outer field. Violations whose field is no field path are left out.
func All(err error) []Pair {
	var out []Pair
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if v, ok := err.(Violation); ok { //nolint:errorlint // err itself: its causes are walked below
			field, desc := v.FieldViolation()
			// pkg/server names a map's keys and values "metadata key", "usage.quantities value".
			field = strings.TrimSuffix(strings.TrimSuffix(field, " key"), " value")
			if fieldPath.MatchString(field) {
				out = append(out, Pair{Field: field, Description: desc})
				return
			}
		}
		switch u := err.(type) { //nolint:errorlint // walking the tree by hand
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// Invalid returns an error about field with the message "<field> <problem>", e.g.
// Invalid("amount", "must be positive").
func Invalid(field, problem string) error { return &invalid{field: field, problem: problem} }

type invalid struct{ field, problem string }

func (e *invalid) Error() string { return e.field + " " + e.problem }

// FieldViolation implements Violation.
func (e *invalid) FieldViolation() (field, description string) { return e.field, e.Error() }
