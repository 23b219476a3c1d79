package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// TestErrors (T2): the ledger's table answers the cases every tally service answers the same way.
func TestErrors(t *testing.T) {
	t.Parallel()
	servertest.CheckErrorTable(t, Errors)
}

func TestErrorsOutagesAreUnavailableWithRetryInfo(t *testing.T) {
	t.Parallel()
	internals := "dial tcp 127.0.0.1:5432: connect: connection refused"
	for _, tc := range []struct {
		name string
		err  error
		// callerGone runs the call under a context whose deadline passed.
		callerGone bool
		code       codes.Code
		retryable  bool
	}{
		{"database down", fmt.Errorf("reading account: %w: %s", ledger.ErrUnavailable, internals), false, codes.Unavailable, true},
		{"commit unanswered", fmt.Errorf("applying ledger write: %w: %w: %w", ledger.ErrOutcomeUnknown, ledger.ErrUnavailable, io.ErrUnexpectedEOF), false, codes.Unavailable, true},
		// The ledger's own deadline on a database call is an outage, not the caller's deadline.
		{"database timed out", fmt.Errorf("%w: reading account: %w", ledger.ErrUnavailable, context.DeadlineExceeded), false, codes.Unavailable, true},
		{"shutting down", app.ErrShuttingDown, false, codes.Unavailable, true},
		{"no price list yet", app.ErrPricingUnavailable, false, codes.Unavailable, true},
		{"the caller's deadline", fmt.Errorf("%w: reading account", context.DeadlineExceeded), true, codes.DeadlineExceeded, false},
		{"a data error keeps its code", fmt.Errorf("%w: 5 available", ledger.ErrInsufficientFunds), false, codes.FailedPrecondition, false},
		{"a bug stays masked", errors.New("scanning account: " + internals), false, codes.Internal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			if tc.callerGone {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, time.Unix(0, 0))
				defer cancel()
			}
			st, _ := Errors.Status(ctx, tc.err)
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

// TestErrorsDomain: the ledger's refusals keep their message, with their code.
func TestErrorsDomain(t *testing.T) {
	t.Parallel()
	for err, code := range map[error]codes.Code{
		fmt.Errorf("%w: org_id is required", ledger.ErrInvalid):                  codes.InvalidArgument,
		fmt.Errorf("%w: USD account, EUR requested", ledger.ErrCurrencyMismatch): codes.InvalidArgument,
		ledger.ErrOverflow:            codes.InvalidArgument,
		ledger.ErrHoldNotActive:       codes.FailedPrecondition,
		ledger.ErrIdempotencyConflict: codes.AlreadyExists,
		ledger.ErrHoldNotFound:        codes.NotFound,
	} {
		st, _ := Errors.Status(t.Context(), err)
		require.Equal(t, code, st.Code(), "%v", err)
		require.Equal(t, err.Error(), st.Message())
	}
}
