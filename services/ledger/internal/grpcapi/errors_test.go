package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/committer"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

func TestToStatusOutagesAreUnavailableWithRetryInfo(t *testing.T) {
	t.Parallel()
	internals := "dial tcp 127.0.0.1:5432: connect: connection refused"
	for _, tc := range []struct {
		name      string
		err       error
		code      codes.Code
		retryable bool
	}{
		{"database down", fmt.Errorf("reading account: %w: %s", ledger.ErrUnavailable, internals), codes.Unavailable, true},
		{"commit unanswered", fmt.Errorf("applying ledger write: %w: %w: %w", ledger.ErrOutcomeUnknown, ledger.ErrUnavailable, io.ErrUnexpectedEOF), codes.Unavailable, true},
		// The ledger's own deadline on a database call is an outage, not the caller's deadline.
		{"database timed out", fmt.Errorf("%w: reading account: %w", ledger.ErrUnavailable, context.DeadlineExceeded), codes.Unavailable, true},
		{"shutting down", committer.ErrClosed, codes.Unavailable, true},
		{"no price list yet", app.ErrPricingUnavailable, codes.Unavailable, true},
		{"the caller's deadline", fmt.Errorf("%w: reading account", context.DeadlineExceeded), codes.DeadlineExceeded, false},
		{"a data error keeps its code", fmt.Errorf("%w: 5 available", ledger.ErrInsufficientFunds), codes.FailedPrecondition, false},
		{"a bug stays masked", errors.New("scanning account: " + internals), codes.Internal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, ok := status.FromError(toStatus(slog.New(slog.DiscardHandler), tc.err))
			require.True(t, ok)
			require.Equal(t, tc.code, st.Code())
			require.False(t, strings.Contains(st.Message(), "127.0.0.1"), "no library internals reach the caller: %q", st.Message())
			var retry *errdetails.RetryInfo
			for _, d := range st.Details() {
				if r, ok := d.(*errdetails.RetryInfo); ok {
					retry = r
				}
			}
			if tc.retryable {
				require.NotNil(t, retry, "an outage tells the client when to retry")
				require.Positive(t, retry.GetRetryDelay().AsDuration())
			} else {
				require.Nil(t, retry)
			}
		})
	}
}
