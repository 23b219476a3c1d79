package servertest

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/server"
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
