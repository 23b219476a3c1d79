package servertest

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// RequireRefusal checks a request-validation case: with want "" the request was accepted (err is
// nil); otherwise table maps err to InvalidArgument with a message that contains want.
func RequireRefusal(t testing.TB, table server.ErrorTable, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	st, _ := table.Status(t.Context(), err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), want) {
		t.Fatalf("got %v %q, want InvalidArgument with %q", st.Code(), st.Message(), want)
	}
}

// RequireCleanText checks what a request validation accepted (what names the request in the
// failure): every value of ids is an identifier (textcheck.Identifier, any length) and every value
// of texts printable text (textcheck.Printable), keyed by field name.
func RequireCleanText(t testing.TB, what string, ids, texts map[string]string) {
	t.Helper()
	for field, v := range ids {
		if err := textcheck.Identifier(field, v, 1<<20); err != nil {
			t.Fatalf("%s accepted: %v", what, err)
		}
	}
	for field, v := range texts {
		if err := textcheck.Printable(field, v); err != nil {
			t.Fatalf("%s accepted: %v", what, err)
		}
	}
}
